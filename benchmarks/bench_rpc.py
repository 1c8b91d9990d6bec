"""RPC round trips per second on loopback: ``python benchmarks/bench_rpc.py [--seconds S]``.

Starts a ``dirac-service`` subprocess (real mutual TLS with a test CA and a user
proxy) serving a trivial ``ping`` and measures from this machine:

* one client, kept-alive connection;
* 8 concurrent clients: 8 threads of one process, and 8 processes;
* one client opening a fresh TLS connection (full handshake) for every call.

Prints a table. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from DIRAC.Core.DISET.RequestHandler import RequestHandler

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
SERVICE = "Framework/Bench"


class BenchHandler(RequestHandler):
    """The service benchmarked (dirac-service loads it through HandlerPath = bench_rpc:BenchHandler): only ``ping``."""


def _setup(folder: Path) -> tuple:
    """Test CA, cfg, proxy; the dirac-service subprocess; returns (launcher, service, proxy)."""
    sys.path.insert(0, str(TESTS))
    from rpc_fixtures import ServiceLauncher, service_cfg
    from security_fixtures import make_env

    env = make_env(folder / "ca", "DIRAC Bench CA", ["alice", "bob"])
    cfgPath = folder / "dirac.cfg"
    cfgPath.write_text(service_cfg(env, {SERVICE: {"HandlerPath": "bench_rpc:BenchHandler", "MaxThreads": 16}}))
    os.environ["DIRACSYSCONFIG"] = str(cfgPath)
    os.environ["X509_CERT_DIR"] = env.caDir
    proxy = env.proxy("alice", "dirac_user", 7200, folder / "proxy")
    launcher = ServiceLauncher(logDir=str(folder))
    service = launcher.start(SERVICE, cfgPath, pythonPath=[str(HERE)], extraArgs=["--log-level", "NOTICE"])
    return launcher, service, proxy


def _client(url: str, proxy: str):
    from DIRAC.Core.DISET.RPCClient import RPCClient

    return RPCClient(url, proxyLocation=proxy, timeout=30)


def _loop(url: str, proxy: str, seconds: float, fresh: bool = False, startAt: float = 0.0) -> list[float]:
    """Call ping for ``seconds``; the latencies in seconds."""
    from DIRAC.Core.Tornado.Client.TornadoClient import closeThreadSessions

    client = _client(url, proxy)
    result = client.ping()  # warm up: context, session, connection
    if not result["OK"]:
        raise RuntimeError(result["Message"])
    if startAt:
        time.sleep(max(0.0, startAt - time.time()))
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if fresh:
            closeThreadSessions()
        start = time.perf_counter()
        result = client.ping()
        latencies.append(time.perf_counter() - start)
        if not result["OK"]:
            raise RuntimeError(result["Message"])
    closeThreadSessions()
    return latencies


def _processWorker(args: tuple) -> list[float]:
    return _loop(*args)


def _row(name: str, latencies: list[float], seconds: float) -> tuple:
    latencies = sorted(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return (name, len(latencies) / seconds, 1000 * statistics.median(latencies), 1000 * p99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each measurement")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-rpc-") as tmp:
        launcher, service, proxy = _setup(Path(tmp))
        url = service.url()
        rows = []
        try:
            rows.append(_row("1 client, keep-alive", _loop(url, proxy, args.seconds), args.seconds))

            results: list[list[float]] = [[] for _ in range(args.clients)]
            startAt = time.time() + 1.0

            def worker(index: int) -> None:
                results[index] = _loop(url, proxy, args.seconds, startAt=startAt)

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(args.seconds + 60)
            merged = [value for chunk in results for value in chunk]
            rows.append(_row(f"{args.clients} threads (1 process), keep-alive", merged, args.seconds))

            startAt = time.time() + 2.0
            context = multiprocessing.get_context("fork")
            with context.Pool(args.clients) as pool:
                chunks = pool.map(_processWorker, [(url, proxy, args.seconds, False, startAt)] * args.clients)
            merged = [value for chunk in chunks for value in chunk]
            rows.append(_row(f"{args.clients} processes, keep-alive", merged, args.seconds))

            rows.append(
                _row("1 client, new TLS connection per call", _loop(url, proxy, args.seconds, True), args.seconds)
            )
        finally:
            launcher.stopAll()

    print(f"\nRPC ping over mutual TLS on 127.0.0.1 ({os.cpu_count()} cores, server = 1 dirac-service process)\n")
    header = f"| {'scenario':<42} | {'calls/s':>8} | {'median ms':>9} | {'p99 ms':>7} |"
    print(header)
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 11}|{'-' * 9}|")
    for name, rate, median, p99 in rows:
        print(f"| {name:<42} | {rate:>8.0f} | {median:>9.2f} | {p99:>7.2f} |")
    handshake = rows[-1][2] - rows[0][2]
    print(f"\nCost of a fresh TLS connection (handshake + session set-up): ~{handshake:.2f} ms per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())

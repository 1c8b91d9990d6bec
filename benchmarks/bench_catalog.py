"""Catalog benchmark: bulk ``addFile`` and ``hasAccess`` of N LFNs in one call, on the DB and over RPC.

Two paths, same operations, each on its own fresh SQLite file:

* ``DB``: ``FileCatalogDB`` called directly in this process.
* ``RPC``: a ``dirac-service DataManagement/FileCatalog`` subprocess on 127.0.0.1 (test CA,
  real proxy, mutual TLS) called through ``FileCatalogClient``; plus ``hasAccess`` through a
  trusted host acting for the user (``delegatedDN``), which is how the S3 gateway asks.

Each timed call registers N new LFNs in a fresh directory of the user's home (so the
parent directories are created too) or asks ``hasAccess`` for those N LFNs; the best of
``--repeat`` runs is reported with the median. Target: at least 2000 LFNs/s for each.
Results are checked (every LFN Successful, access True) outside the timings. Run::

    python benchmarks/bench_catalog.py            # 1000 LFNs, best of 5
    python benchmarks/bench_catalog.py --quick    # 200 LFNs, best of 2

The service process is stopped by its PID at the end (also on error or SIGTERM).
Exit status 0 when every phase ran and verified (a target may still be MISS), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from _common import BenchmarkError, useTestHelpers

TARGET = 2000.0  # LFNs per second, at least
USER = {"DN": "/CN=bench", "username": "alice", "group": "dirac_user", "properties": ["NormalUser"], "VO": "testvo"}
HOME = "/testvo/user/a/alice"


def fileDict(directory: str, count: int) -> dict:
    return {
        f"{directory}/file_{index:06d}.dat": {"SE": "S3-BENCH", "Size": index, "Checksum": f"{index:08x}", "GUID": ""}
        for index in range(count)
    }


def check(result: dict, expected: int, what: str, wantValue: object = True) -> None:
    if not result["OK"]:
        raise BenchmarkError(f"{what}: {result['Message']}")
    value = result["Value"]
    if value["Failed"]:
        raise BenchmarkError(f"{what}: {len(value['Failed'])} failed, e.g. {next(iter(value['Failed'].items()))}")
    good = sum(1 for item in value["Successful"].values() if item == wantValue)
    if good != expected:
        raise BenchmarkError(f"{what}: {good} of {expected} LFNs answered {wantValue!r}")


class Batches:
    """The LFN batches of one path: ``new(i)`` a fresh one to register, ``again(i)`` the LFNs of one registered."""

    def __init__(self, directory: str, count: int) -> None:
        self.directory = directory
        self.count = count
        self.made: list[dict] = []

    def new(self, index: int) -> dict:
        self.made.append(fileDict(f"{self.directory}/run{index}", self.count))
        return self.made[-1]

    def again(self, index: int) -> list[str]:
        return list(self.made[index % len(self.made)])


def timeRuns(repeat: int, prepare: Callable[[int], object], run: Callable[[object], dict], verify) -> list[float]:
    """Seconds of ``run(prepare(i))`` for each repetition; ``verify`` checks each result untimed."""
    times = []
    for index in range(repeat):
        argument = prepare(index)
        start = time.perf_counter()
        result = run(argument)
        times.append(time.perf_counter() - start)
        verify(result)
    return times


class Table:
    def __init__(self, count: int) -> None:
        self.count = count
        self.rows: list[tuple] = []

    def add(self, operation: str, path: str, times: list[float]) -> None:
        best = min(times)
        rate = self.count / best
        self.rows.append(
            (operation, path, self.count, best, statistics.median(times), rate, "ok" if rate >= TARGET else "MISS")
        )

    def print(self) -> None:
        header = ("operation", "path", "LFNs", "best s", "median s", "LFNs/s (best)", f">= {TARGET:.0f}/s")
        print(
            f"{header[0]:<22} {header[1]:<14} {header[2]:>6} {header[3]:>8} {header[4]:>9} {header[5]:>14}  {header[6]}"
        )
        for operation, path, count, best, median, rate, status in self.rows:
            print(f"{operation:<22} {path:<14} {count:>6} {best:>8.3f} {median:>9.3f} {rate:>14.0f}  {status}")


def benchDB(folder: Path, count: int, repeat: int, table: Table) -> None:
    from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

    db = FileCatalogDB(f"sqlite:///{folder / 'direct.sqlite'}")
    if not db.isConnected()["OK"]:
        raise BenchmarkError(f"cannot open the DB: {db.connectionError}")
    try:
        batches = Batches(f"{HOME}/db", count)
        times = timeRuns(
            repeat, batches.new, lambda lfns: db.addFile(lfns, USER), lambda r: check(r, count, "DB addFile")
        )
        table.add("addFile", "DB", times)
        times = timeRuns(
            repeat,
            batches.again,
            lambda lfns: db.hasAccess(lfns, "Write", USER),
            lambda r: check(r, count, "DB hasAccess"),
        )
        table.add("hasAccess Write", "DB", times)
        times = timeRuns(
            repeat,
            batches.again,
            lambda lfns: db.getReplicas(lfns, USER),
            lambda r: check(r, count, "DB getReplicas", {"S3-BENCH": ""}),
        )
        table.add("getReplicas", "DB", times)
    finally:
        db.close()


def startService(folder: Path):
    """(launcher, service, env, proxy path): a FileCatalog subprocess and the test process configured for it."""
    from catalog_fixtures import systems_cfg
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData
    from rpc_fixtures import ServiceLauncher, service_cfg
    from security_fixtures import make_env

    env = make_env(folder / "ca", "Bench CA", ["alice", "bob"])
    cfgPath = folder / "dirac.cfg"
    cfgPath.write_text(service_cfg(env, {}, extra=systems_cfg(folder, dbFile="service.sqlite")))
    launcher = ServiceLauncher(logDir=str(folder))
    service = launcher.start("DataManagement/FileCatalog", cfgPath)
    os.environ["DIRACSYSCONFIG"] = str(cfgPath)
    gConfigurationData.loadAll()
    proxy = env.proxy("alice", "dirac_user", path=folder / "alice.pem")
    return launcher, service, env, proxy


def benchRPC(folder: Path, count: int, repeat: int, table: Table) -> None:
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    launcher, service, env, proxy = startService(folder)
    try:
        client = FileCatalogClient(url=service.url(), proxyLocation=proxy)
        asUser = FileCatalogClient(url=service.url(), useCertificates=True, delegatedDN=env.users["alice"].dn)
        warm = client.isOK()  # the TLS session and connection are set up before timing
        if not warm["OK"]:
            raise BenchmarkError(f"service not answering: {warm['Message']}")
        batches = Batches(f"{HOME}/rpc", count)
        times = timeRuns(repeat, batches.new, client.addFile, lambda r: check(r, count, "RPC addFile"))
        table.add("addFile", "RPC", times)
        times = timeRuns(
            repeat,
            batches.again,
            lambda lfns: client.hasAccess(lfns, "Write"),
            lambda r: check(r, count, "RPC hasAccess"),
        )
        table.add("hasAccess Write", "RPC", times)
        asUser.isOK()
        times = timeRuns(
            repeat,
            batches.again,
            lambda lfns: asUser.hasAccess(lfns, "Write"),
            lambda r: check(r, count, "RPC delegated hasAccess"),
        )
        table.add("hasAccess Write", "RPC delegated", times)
        times = timeRuns(
            repeat,
            batches.again,
            client.getReplicas,
            lambda r: check(r, count, "RPC getReplicas", {"S3-BENCH": ""}),
        )
        table.add("getReplicas", "RPC", times)
    finally:
        launcher.stopAll()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lfns", type=int, default=None, help="LFNs per bulk call (default 1000, --quick 200)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per row (default 5, --quick 2)")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--tmpdir", default=None, help="where the temporary folder goes")
    args = parser.parse_args(argv)
    count = args.lfns or (200 if args.quick else 1000)
    repeat = max(1, args.repeat or (2 if args.quick else 5))
    useTestHelpers()  # tests/ on sys.path; SIGTERM runs the finally blocks (stop the service, remove the folder)

    from DIRAC.FrameworkSystem.Client.Logger import gLogger

    gLogger.setLevel("ERROR")
    table = Table(count)
    status = 0
    with tempfile.TemporaryDirectory(prefix="bench-catalog-", dir=args.tmpdir) as tmp:
        folder = Path(tmp)
        for phase in (benchDB, benchRPC):
            try:
                phase(folder, count, repeat, table)
            except (BenchmarkError, RuntimeError, OSError) as exc:
                print(f"{phase.__name__} failed: {exc}", file=sys.stderr)
                traceback.print_exc()
                status = 1
    print(f"FileCatalog bulk calls, {count} LFNs per call, best of {repeat} (SQLite file, 127.0.0.1)")
    table.print()
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Catalog benchmark at scale: addFile, getReplicas, hasAccess, listDirectory and removeFile calls per second
with 1,000 and with N files registered, on SQLite, MariaDB and PostgreSQL, from one client and from 8
processes against two FileCatalog services sharing the database; the services' peak memory.

For each backend, two catalogs side by side: a database with 1,000 files and one with N files
(MariaDB and PostgreSQL from Debian's binaries, started in the temporary folder on 127.0.0.1 and
stopped by PID at the end), each served by two ``dirac-service DataManagement/FileCatalog``
subprocesses (test CA, real proxy, mutual TLS). The files are registered in one directory with
bulk ``addFile`` calls of 5,000 LFNs made straight on the database. Then, in ``--rounds`` rounds,
each operation is called ``--calls`` times over RPC through ``FileCatalogClient`` with one LFN per
call (``listDirectory``: one page of 1,000 entries from a random place of the big directory,
``listDirectoryPage``), first from this process, then from 8 processes (half on each service), on
the small and on the big catalog in turn; the best round counts (the two catalogs are measured in
the same minutes, so a busy machine slows both alike). ``removeFile`` removes what ``addFile``
added. Finally the whole N-entry directory is listed page by page from one client process
(seconds, client peak RSS). The database servers get 1 GB of cache (InnoDB buffer pool,
shared_buffers), as a production catalog host would. Service memory: the peak RSS (VmHWM) of the
larger of the big catalog's two services at the end. Run::

    python benchmarks/bench_catalog.py                  # N = 1,000,000 on the three backends (long)
    python benchmarks/bench_catalog.py --quick          # N = 20,000, 30 calls, 2 rounds
    python benchmarks/bench_catalog.py --files 200000 --backends mariadb postgresql

Goal (issue 13): with N files, every call keeps at least half of its 1,000-file rate (ratio >= 0.5),
and the listing of the whole directory stays under 200 MB in the service and the client.
Exit status 0 when every phase ran and verified, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

from _common import (
    BenchmarkError,
    argumentParser,
    loadAverage,
    loadNote,
    parseOptions,
    printTable,
    runInTemporaryFolder,
)

BACKENDS = ("sqlite", "mariadb", "postgresql")
OPERATIONS = ("addFile", "getReplicas", "hasAccess", "listDirectory", "removeFile")
HOME = "/testvo/user/a/alice"
BIG = f"{HOME}/big"
USER = {"DN": "/CN=bench", "username": "alice", "group": "dirac_user", "properties": ["NormalUser"], "VO": "testvo"}
POPULATE_CHUNK = 5000
PAGE = 1000
SMALL = 1000
PROCESSES = 8
#: Database caches sized as a production server's would be: the big catalog's tables and indexes
#: (a few hundred MB for 1,000,000 files) fit in memory, as they do on a real catalog host.
SERVER_MEMORY = {"mariadb": {"bufferPool": "1G"}, "postgresql": {"sharedBuffers": "1GB"}}


def fileInfo(index: int) -> dict:
    return {"SE": "S3-BENCH", "Size": index, "Checksum": f"{index:08x}", "GUID": "", "PFN": ""}


def lfnOf(index: int) -> str:
    return f"{BIG}/f{index:08d}"


# ---------------------------------------------------------------- the calls, in this process or a worker

_clients: dict[str, object] = {}


def _client(url: str, proxy: str):
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    if url not in _clients:
        _clients[url] = FileCatalogClient(url=url, proxyLocation=proxy)
        _clients[url].isOK()  # TLS set up before any timing
    return _clients[url]


def runCalls(task: tuple) -> tuple[float, int, str]:
    """(seconds, calls, first problem or '') of ``calls`` one-LFN calls of ``operation``."""
    url, proxy, operation, calls, population, tag = task
    client = _client(url, proxy)
    rng = random.Random(f"{tag}-{operation}")
    newNames = [f"{BIG}/new-{tag}-{number}" for number in range(calls)]
    problem = ""
    start = time.perf_counter()
    for number in range(calls):
        if operation == "addFile":
            result = client.addFile({newNames[number]: fileInfo(number)})
        elif operation == "removeFile":
            result = client.removeFile([newNames[number]])
        elif operation == "getReplicas":
            result = client.getReplicas([lfnOf(rng.randrange(population))])
        elif operation == "hasAccess":
            result = client.hasAccess([lfnOf(rng.randrange(population))], "Read")
        else:
            marker = f"Ff{rng.randrange(max(1, population - PAGE)):08d}"
            result = client.listDirectoryPage(BIG, False, marker, PAGE)
        if not problem and (not result["OK"] or result["Value"]["Failed"]):
            problem = str(result.get("Message") or result["Value"]["Failed"])[:300]
    return time.perf_counter() - start, calls, problem


def warmUp(task: tuple) -> None:
    """Set up this worker's client (TLS included) before the timed calls."""
    _client(task[0], task[1])


def walkDirectory(task: tuple) -> tuple[float, int, float, str]:
    """(seconds, entries, this process's peak RSS in MB, problem) of listing ``BIG`` page by page."""
    url, proxy = task
    from DIRAC.Resources.Catalog.Utilities import iterDirectoryPages

    client = _client(url, proxy)
    entries, problem = 0, ""
    start = time.perf_counter()
    for result in iterDirectoryPages(client.listDirectoryPage, BIG, False, PAGE):
        if not result["OK"] or BIG not in result["Value"]["Successful"]:
            problem = str(result.get("Message") or result["Value"]["Failed"])[:300]
            break
        entries += len(result["Value"]["Successful"][BIG]["Files"])
    seconds = time.perf_counter() - start
    return seconds, entries, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, problem


def _workerInit(cfgPath: str, caDir: str) -> None:
    os.environ.update(DIRACSYSCONFIG=cfgPath, X509_CERT_DIR=caDir)
    from DIRAC.FrameworkSystem.Client.Logger import gLogger

    gLogger.setLevel("ERROR")


def peakRSS(pid: int) -> float:
    """VmHWM of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- one backend


class CatalogBenchmark:
    """Every backend in turn; see the module documentation."""

    def __init__(self, work: Path, options) -> None:
        self.work = work
        self.options = options
        self.rows: list[list[str]] = []
        self.walks: list[list[str]] = []
        self.notes: list[str] = []
        self.stack = contextlib.ExitStack()  # what the backend being measured started

    def tearDown(self) -> None:
        self.stack.close()

    def run(self) -> int:
        from DIRAC.FrameworkSystem.Client.Logger import gLogger

        gLogger.setLevel("ERROR")
        before = loadAverage()
        for backend in self.options.backends:
            self.benchBackend(backend)
        files = f"{self.options.files:,}"
        header = ["backend", "operation", "1,000: 1 client", f"1,000: {PROCESSES} procs", f"{files}: 1 client",
                  f"{files}: {PROCESSES} procs", "ratio 1 / 8", "service peak MB"]  # fmt: skip
        printTable(
            header, self.rows, "FileCatalog calls per second over RPC, one LFN (or one 1000-entry page) per call"
        )
        printTable(["backend", "entries", "seconds", "entries/s", "client peak MB", "service peak MB"], self.walks,
                   "Listing the whole big directory page by page (one client)")  # fmt: skip
        print(f"\nbest of {self.options.rounds} rounds of {self.options.calls} calls (1 client) and "
              f"{self.options.calls} calls per process ({PROCESSES} processes, two services)")  # fmt: skip
        print(f"ratio: calls/s with {files} files divided by calls/s with 1,000 files (1 client / 8 processes)")
        for note in [*self.notes, loadNote(before, loadAverage())]:
            print(note)
        return 0

    def benchBackend(self, backend: str) -> None:
        from db_fixtures import missingReason, startServer
        from security_fixtures import make_env

        reason = missingReason(backend) if backend != "sqlite" else ""
        if reason:
            self.notes.append(f"{backend} SKIPPED: {reason}")
            return
        folder = self.work / backend
        folder.mkdir()
        with self.stack:
            server = None
            if backend != "sqlite":
                server = startServer(backend, folder / "server", **SERVER_MEMORY[backend])
                self.stack.callback(server.stop)
            env = make_env(folder / "ca", "Bench CA", ["alice", "bob"])
            small = self.catalog(folder / "small", server, env, SMALL)
            big = self.catalog(folder / "big", server, env, self.options.files)
            context = multiprocessing.get_context("spawn")
            pool = context.Pool(PROCESSES, initializer=_workerInit, initargs=(str(big["cfg"]), str(env.caDir)))
            self.stack.callback(pool.join)
            self.stack.callback(pool.terminate)
            best: dict[tuple[str, int, str], float] = {}
            for round_ in range(self.options.rounds):
                for operation in OPERATIONS:
                    for catalog in (small, big):
                        for mode, rate in self.measure(pool, catalog, operation, round_).items():
                            key = (operation, catalog["files"], mode)
                            best[key] = max(best.get(key, 0.0), rate)
                print(f"{backend}: round {round_ + 1} of {self.options.rounds} done", flush=True)
            serviceMB = max(peakRSS(service.pid) for service in big["services"])
            for operation in OPERATIONS:
                rates = [best[(operation, files, mode)] for files in (SMALL, big["files"]) for mode in ("1", "8")]
                ratio = f"{rates[2] / rates[0]:.2f} / {rates[3] / rates[1]:.2f}"
                self.rows.append([backend, operation, *(f"{rate:,.0f}" for rate in rates), ratio, f"{serviceMB:.0f}"])
            seconds, entries, clientMB, problem = pool.apply(walkDirectory, ((big["services"][0].url(), big["proxy"]),))
            if problem or entries != big["files"]:
                raise BenchmarkError(f"{backend} listing: {entries} of {big['files']} entries; {problem}")
            serviceMB = max(peakRSS(service.pid) for service in big["services"])
            self.walks.append([backend, f"{entries:,}", f"{seconds:.1f}", f"{entries / seconds:,.0f}",
                               f"{clientMB:.0f}", f"{serviceMB:.0f}"])  # fmt: skip
        print(f"{backend}: services and database server stopped", flush=True)

    def catalog(self, folder: Path, server, env, files: int) -> dict:
        """A database with ``files`` files in ``BIG`` and two services on it."""
        from catalog_fixtures import running_catalog
        from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

        folder.mkdir()
        url = server.newDatabase() if server else f"sqlite:///{folder / 'fc.sqlite'}"
        db = FileCatalogDB(url)
        try:
            self.populate(db, files)
        finally:
            db.close()
        services, cfgPath, proxies = self.stack.enter_context(running_catalog(env, folder, dbURL=url, instances=2))
        return {"files": files, "services": services, "cfg": cfgPath, "proxy": str(proxies[("alice", "dirac_user")])}

    @staticmethod
    def populate(db, target: int) -> None:
        """Register files 0 .. ``target`` - 1 in ``BIG`` with bulk calls on the database."""
        start = time.perf_counter()
        for first in range(0, target, POPULATE_CHUNK):
            lfns = {lfnOf(index): fileInfo(index) for index in range(first, min(target, first + POPULATE_CHUNK))}
            result = db.addFile(lfns, USER)
            if not result["OK"] or result["Value"]["Failed"]:
                raise BenchmarkError(
                    f"populating: {result.get('Message') or list(result['Value']['Failed'].items())[:1]}"
                )
        seconds = time.perf_counter() - start
        print(f"registered {target:,} files in {seconds:.1f} s ({target / seconds:,.0f}/s)", flush=True)

    def measure(self, pool, catalog: dict, operation: str, round_: int) -> dict[str, float]:
        """{'1': calls/s from this process, '8': calls/s from the 8 processes} of one operation."""
        calls, files, services, proxy = self.options.calls, catalog["files"], catalog["services"], catalog["proxy"]
        tag = f"r{round_}"
        seconds, done, problem = runCalls((services[0].url(), proxy, operation, calls, files, f"{tag}-solo"))
        if problem:
            raise BenchmarkError(f"{operation} with {files} files: {problem}")
        tasks = [(services[index % 2].url(), proxy, operation, calls, files, f"{tag}-p{index}")
                 for index in range(PROCESSES)]  # fmt: skip
        pool.map(warmUp, tasks, chunksize=1)
        start = time.perf_counter()
        results = pool.map(runCalls, tasks, chunksize=1)
        wall = time.perf_counter() - start
        problems = [problem for _s, _d, problem in results if problem]
        if problems:
            raise BenchmarkError(f"{operation} x{PROCESSES} with {files} files: {problems[0]}")
        return {"1": done / seconds, "8": sum(done for _s, done, _p in results) / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argumentParser(__doc__.split("\n", 1)[0], quick="smoke run: 20000 files, 30 calls, 2 rounds unless given")
    parser.add_argument("--files", type=int, default=None, help="files registered (default 1000000, --quick 20000)")
    parser.add_argument("--calls", type=int, default=None, help="calls per round and process (default 200, --quick 30)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, the best counts (default 3, --quick 2)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    options = parseOptions(
        parser, argv, ("files", "calls", "rounds"), files=(20_000, 1_000_000), calls=(30, 200), rounds=(2, 3)
    )
    if options.files < SMALL:
        parser.error(f"--files must be at least {SMALL}")
    if shutil.disk_usage(options.tmpdir or "/tmp").free < options.files * 3000:
        print("warning: the databases may not fit in the free disk space", file=sys.stderr)
    return runInTemporaryFolder("bench-catalog-", options, lambda work: CatalogBenchmark(work, options))


if __name__ == "__main__":
    sys.exit(main())

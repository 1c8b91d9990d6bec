"""Catalog benchmark at scale: addFile, getReplicas, hasAccess, listDirectory and removeFile calls per second
with 1,000 and with N files registered, on SQLite, MariaDB and PostgreSQL, from one client and from 8
processes against two FileCatalog services sharing the database; the services' peak memory.

For each backend: a fresh database (MariaDB and PostgreSQL from Debian's binaries, each started in
the temporary folder on 127.0.0.1, stopped by PID at the end), two ``dirac-service
DataManagement/FileCatalog`` subprocesses on it (test CA, real proxy, mutual TLS). The files are
registered in one directory with bulk ``addFile`` calls of 5,000 LFNs made straight on the database;
then, with 1,000 files and again with N files registered, each operation is called ``--calls`` times
over RPC through ``FileCatalogClient`` with one LFN per call (``listDirectory``: one page of 1,000
entries from a random place of the big directory, ``listDirectoryPage``), first from this process,
then from 8 processes (half on each service). ``removeFile`` removes what ``addFile`` added. Finally
the whole N-entry directory is listed page by page from one client process (seconds, client peak RSS).
The service memory is the peak RSS (VmHWM) of the larger of the two services so far. Run::

    python benchmarks/bench_catalog.py                  # N = 1,000,000 on the three backends (long)
    python benchmarks/bench_catalog.py --quick          # N = 20,000, 50 calls per row
    python benchmarks/bench_catalog.py --files 200000 --backends mariadb postgresql

Goal (issue 13): with N files, every call keeps at least half of its 1,000-file rate ("ratio" >= 0.5),
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
        self.baseline: dict[tuple[str, str], tuple[float, float]] = {}
        self.stack = contextlib.ExitStack()  # what the backend being measured started

    def tearDown(self) -> None:
        self.stack.close()

    def run(self) -> int:
        from DIRAC.FrameworkSystem.Client.Logger import gLogger

        gLogger.setLevel("ERROR")
        before = loadAverage()
        for backend in self.options.backends:
            self.benchBackend(backend)
        header = ["backend", "files", "operation", "1 client calls/s", f"{PROCESSES} procs calls/s", "ratio 1/8",
                  "service peak MB"]  # fmt: skip
        printTable(header, self.rows, "FileCatalog calls over RPC, one LFN (or one 1000-entry page) per call")
        printTable(["backend", "entries", "seconds", "entries/s", "client peak MB", "service peak MB"], self.walks,
                   "Listing the whole big directory page by page (one client)")  # fmt: skip
        print(f"\ncalls per row: {self.options.calls} (1 client), {self.options.calls} per process ({PROCESSES})")
        print("ratio 1/8: calls/s with N files divided by calls/s with 1000 files (1 client / 8 processes)")
        for note in [*self.notes, loadNote(before, loadAverage())]:
            print(note)
        return 0

    def benchBackend(self, backend: str) -> None:
        from catalog_fixtures import running_catalog
        from db_fixtures import missingReason, startServer
        from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
        from security_fixtures import make_env

        reason = missingReason(backend) if backend != "sqlite" else ""
        if reason:
            self.notes.append(f"{backend} SKIPPED: {reason}")
            return
        folder = self.work / backend
        folder.mkdir()
        with self.stack:
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'fc.sqlite'}"
            else:
                server = startServer(backend, folder / "server")
                self.stack.callback(server.stop)
                url = server.newDatabase()
            env = make_env(folder / "ca", "Bench CA", ["alice", "bob"])
            services, cfgPath, proxies = self.stack.enter_context(running_catalog(env, folder, dbURL=url, instances=2))
            proxy = str(proxies[("alice", "dirac_user")])
            context = multiprocessing.get_context("spawn")
            pool = context.Pool(PROCESSES, initializer=_workerInit, initargs=(str(cfgPath), str(env.caDir)))
            self.stack.callback(pool.join)
            self.stack.callback(pool.terminate)
            db = FileCatalogDB(url)
            self.stack.callback(db.close)
            population = 0
            for target in (SMALL, self.options.files):
                population = self.populate(db, population, target)
                self.measure(backend, pool, services, proxy, population)
            seconds, entries, clientMB, problem = pool.apply(walkDirectory, ((services[0].url(), proxy),))
            if problem or entries != population:
                raise BenchmarkError(f"{backend} listing: {entries} of {population} entries; {problem}")
            serviceMB = max(peakRSS(service.pid) for service in services)
            self.walks.append([backend, f"{entries:,}", f"{seconds:.1f}", f"{entries / seconds:,.0f}",
                               f"{clientMB:.0f}", f"{serviceMB:.0f}"])  # fmt: skip
        print(f"{backend}: services and database server stopped", flush=True)

    def populate(self, db, population: int, target: int) -> int:
        """Register files ``population`` .. ``target`` - 1 in ``BIG`` with bulk calls on the database."""
        start = time.perf_counter()
        for first in range(population, target, POPULATE_CHUNK):
            lfns = {lfnOf(index): fileInfo(index) for index in range(first, min(target, first + POPULATE_CHUNK))}
            result = db.addFile(lfns, USER)
            if not result["OK"] or result["Value"]["Failed"]:
                raise BenchmarkError(
                    f"populating: {result.get('Message') or list(result['Value']['Failed'].items())[:1]}"
                )
        if target > population:
            seconds = time.perf_counter() - start
            rate = (target - population) / seconds
            print(f"registered {target - population:,} files in {seconds:.1f} s ({rate:,.0f}/s)", flush=True)
        return target

    def measure(self, backend: str, pool, services, proxy: str, population: int) -> None:
        calls = self.options.calls
        for operation in OPERATIONS:
            tag = f"{population}-solo"
            seconds, done, problem = runCalls((services[0].url(), proxy, operation, calls, population, tag))
            if problem:
                raise BenchmarkError(f"{backend} {operation} with {population} files: {problem}")
            solo = done / seconds
            tasks = [(services[index % 2].url(), proxy, operation, calls, population, f"{population}-p{index}")
                     for index in range(PROCESSES)]  # fmt: skip
            pool.map(warmUp, tasks, chunksize=1)
            start = time.perf_counter()
            results = pool.map(runCalls, tasks, chunksize=1)
            wall = time.perf_counter() - start
            problems = [problem for _s, _d, problem in results if problem]
            if problems:
                raise BenchmarkError(f"{backend} {operation} x{PROCESSES} with {population} files: {problems[0]}")
            many = sum(done for _s, done, _p in results) / wall
            serviceMB = max(peakRSS(service.pid) for service in services)
            key = (backend, operation)
            if population == SMALL:
                self.baseline[key] = (solo, many)
                ratio = ""
            else:
                ratio = f"{solo / self.baseline[key][0]:.2f} / {many / self.baseline[key][1]:.2f}"
            self.rows.append([backend, f"{population:,}", operation, f"{solo:,.0f}", f"{many:,.0f}", ratio,
                              f"{serviceMB:.0f}"])  # fmt: skip
            print(" | ".join(self.rows[-1]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argumentParser(__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=None, help="files registered (default 1000000, --quick 20000)")
    parser.add_argument("--calls", type=int, default=None, help="calls per row and process (default 300, --quick 50)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    options = parseOptions(parser, argv, ("files", "calls"), files=(20_000, 1_000_000), calls=(50, 300))
    if options.files < SMALL:
        parser.error(f"--files must be at least {SMALL}")
    if shutil.disk_usage(options.tmpdir or "/tmp").free < options.files * 3000:
        print("warning: the databases may not fit in the free disk space", file=sys.stderr)
    return runInTemporaryFolder("bench-catalog-", options, lambda work: CatalogBenchmark(work, options))


if __name__ == "__main__":
    sys.exit(main())

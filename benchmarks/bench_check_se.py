"""dirac-dms-check-se benchmark: compare an SE with the catalog for N files in D directories.

One ``rclone serve s3`` (local backend, SigV4 checked) on 127.0.0.1 in a temporary folder,
stopped by its PID at the end. The catalog is a real ``FileCatalogDB`` on an SQLite file. N
empty objects are written straight to the bucket with boto3 in D directories under one top
directory, and registered at the SE in the catalog with one bulk ``addFile``; then a few are
made to disagree (one dark object, one lost replica, one size mismatch). Timed, ``--repeat``
rounds: ``StorageConsistency(SE).check(top)`` (sizes only, the default of the command). Checks,
outside the timings (status 1 when wrong): exactly the seeded disagreements are found and every
object was counted. Printed: best and median seconds, files per second, and the S3 listing
requests and catalog queries counted during one round. Run::

    python benchmarks/bench_check_se.py            # 20,000 files in 200 directories, best of 3
    python benchmarks/bench_check_se.py --quick    # 2,000 files in 20 directories, 1 round
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import (
    CATALOG_USER,
    BenchmarkError,
    argumentParser,
    loadAverage,
    loadConfiguration,
    loadNote,
    parseOptions,
    runInTemporaryFolder,
    sqliteCatalogDB,
    startRclone,
    stopRclone,
)

SE = "S3-BENCH"
TOP = "/vo/user/a/alice/check"


class CheckBenchmark:
    def __init__(self, options: argparse.Namespace, work: Path) -> None:
        self.options = options
        self.work = work
        self.server = None
        self.times: list[float] = []

    def tearDown(self) -> None:
        stopRclone(self.server)
        self.server = None

    def configure(self) -> None:
        from catalog_fixtures import DBCatalog
        from s3_fixtures import s3_se_cfg

        self.server = startRclone(self.work)
        self.client = self.server.client()
        self.bucket = "bench-check"
        self.client.create_bucket(Bucket=self.bucket)
        loadConfiguration(self.work / "dirac.cfg", s3_se_cfg(SE, self.server, self.bucket))
        self.db = sqliteCatalogDB(self.work / "fc.sqlite")
        calls = self.calls = []

        class CountingCatalog(DBCatalog):
            def listDirectory(self, lfns, verbose=False):
                calls.append(len(lfns))
                return self.db.listDirectory(lfns, self.credentials, verbose)

        self.catalog = CountingCatalog(self.db, CATALOG_USER)

    def seed(self) -> None:
        """N objects in D directories, all registered; then one dark, one lost, one size mismatch."""
        count, directories = self.options.files, self.options.directories
        lfns = [f"{TOP}/d{index % directories:04d}/f{index:06d}.dat" for index in range(count)]
        start = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda lfn: self.client.put_object(Bucket=self.bucket, Key=lfn[1:], Body=b""), lfns))
        entries = {lfn: {"SE": SE, "Size": 0, "Checksum": "00000001", "GUID": lfn, "PFN": ""} for lfn in lfns}
        added = self.db.addFile(entries, CATALOG_USER)
        if not added["OK"] or added["Value"]["Failed"]:
            raise BenchmarkError(f"registration failed: {str(added)[:300]}")
        self.client.put_object(Bucket=self.bucket, Key=f"{TOP[1:]}/d0000/dark.dat", Body=b"")
        self.client.delete_object(Bucket=self.bucket, Key=lfns[1][1:])
        self.client.put_object(Bucket=self.bucket, Key=lfns[2][1:], Body=b"x")
        self.expected = ([f"{TOP}/d0000/dark.dat"], [lfns[1]], [lfns[2]])
        print(f"seeded {count} objects in {directories} directories in {time.perf_counter() - start:.1f} s", flush=True)

    def check(self) -> dict:
        from DIRAC.DataManagementSystem.Client.StorageConsistency import StorageConsistency

        self.calls.clear()
        start = time.perf_counter()
        result = StorageConsistency(SE, fileCatalog=self.catalog).check(TOP, minAge=0)
        self.times.append(time.perf_counter() - start)
        if not result["OK"]:
            raise BenchmarkError(f"check failed: {result['Message']}")
        report = result["Value"]
        found = (report.dark, report.lost, sorted(report.mismatches))
        if found != self.expected or report.problems or report.files != self.options.files:
            raise BenchmarkError(f"found {found} (problems {report.problems}, {report.files} objects)")
        return {"catalog queries": len(self.calls), "directories": report.directories}

    def run(self) -> int:
        loadBefore = loadAverage()
        self.configure()
        self.seed()
        counts = {}
        for round_ in range(self.options.repeat):
            counts = self.check()
            print(f"round {round_ + 1}: {self.times[-1]:.2f} s", flush=True)
        best, median = min(self.times), statistics.median(self.times)
        print(f"\ncheck of {self.options.files} files in {counts['directories']} directories (sizes only)")
        print(f"best {best:.2f} s, median {median:.2f} s, {self.options.files / best:.0f} files/s")
        print(f"catalog queries per round: {counts['catalog queries']} (directories asked together by level)")
        print(f"note: {loadNote(loadBefore, loadAverage())}; loopback, rclone local disk, SQLite catalog")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argumentParser(__doc__.split("\n\n")[0], quick="smoke run: 2000 files, 20 directories, 1 round")
    parser.add_argument("--files", type=int, default=None, help="number of files (default 20000; --quick 2000)")
    parser.add_argument("--directories", type=int, default=None, help="directories (default 200; --quick 20)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds, the best is reported (default 3; --quick 1)")
    options = parseOptions(
        parser,
        argv,
        ("files", "directories", "repeat"),
        files=(2000, 20000),
        directories=(20, 200),
        repeat=(1, 3),
    )
    if options.files < 3:
        parser.error("--files must be at least 3 (three of them are made to disagree)")
    return runInTemporaryFolder("bench-check-", options, lambda work: CheckBenchmark(options, work))


if __name__ == "__main__":
    sys.exit(main())

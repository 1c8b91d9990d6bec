"""DataManager benchmark: ``replicateAndRegister`` of N x M MiB from S3 to a File SE, next to plain boto3.

One ``rclone serve s3`` (local backend, SigV4 checked) is started on 127.0.0.1 in a
temporary folder and stopped by its PID at the end (also on error or SIGTERM). The SEs are
``S3-BENCH`` (the bucket, direct keys) and ``FILE-BENCH`` (a local folder); the catalog is a
real ``FileCatalogDB`` on an SQLite file, injected into ``DataManager(fileCatalog=...)``
through a small adapter that calls it with one user's credentials.

The N files are uploaded and registered once (``putAndRegister``, timed, shown for
information). Then, ``--repeat`` rounds, the order alternating between rounds:

* ours: one ``dm.replicateAndRegister(lfns, 'FILE-BENCH', localCache=...)``. S3 is never a
  third-party protocol, so each file goes through a local copy: download (adler32 checked
  against the catalog), upload to the File SE (checksum checked), register the replica,
  remove the temporary copy.
* plain: the same bytes with a plain serial script: for each object ``download_file`` to a
  temporary file, ``shutil.copyfile`` into a destination folder, remove the temporary file
  (no checksums, no catalog).

Checks, outside the timings (any failure ends with status 1): every LFN Successful, the catalog
lists the new replica, every File SE copy and every plain copy equals its source byte for byte,
the local cache holds nothing afterwards. Between rounds the File SE replicas are removed with
``dm.removeReplica`` and the plain folder is emptied. The table gives the best and median
seconds and the ratio ``ours / plain`` of the best times (above 1: ours is slower). Run::

    python benchmarks/bench_datamanager.py            # 100 x 1 MiB, best of 3
    python benchmarks/bench_datamanager.py --quick    # 20 x 1 MiB, 1 round
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    CATALOG_USER,
    BenchmarkError,
    MiB,
    argumentParser,
    expectAll,
    loadAverage,
    loadConfiguration,
    loadNote,
    parseOptions,
    runInTemporaryFolder,
    sqliteCatalogDB,
    startRclone,
    stopRclone,
)

S3_SE, FILE_SE = "S3-BENCH", "FILE-BENCH"
HOME = "/vo/user/a/alice"


class DataManagerBenchmark:
    def __init__(self, options: argparse.Namespace, work: Path) -> None:
        self.options = options
        self.work = work
        self.server = None  # s3_fixtures.S3Server
        self.times: dict[str, list[float]] = {"ours": [], "plain": []}
        self.notes: list[str] = []

    # -- set-up

    def startServer(self) -> None:
        self.server = startRclone(self.work)

    def tearDown(self) -> None:
        stopRclone(self.server)
        self.server = None

    def configure(self) -> None:
        """The bucket, the two SEs in a dirac.cfg loaded into this process, the catalog and the DataManager."""
        server = self.server
        self.client = server.client()
        self.bucket = "bench-dm"
        self.client.create_bucket(Bucket=self.bucket)
        self.fileRoot = self.work / "file-se"
        self.fileRoot.mkdir()

        from catalog_fixtures import DBCatalog
        from s3_fixtures import file_se_cfg, merge_cfg, s3_se_cfg

        cfgText = merge_cfg(s3_se_cfg(S3_SE, server, self.bucket), file_se_cfg(FILE_SE, self.fileRoot))
        loadConfiguration(self.work / "dirac.cfg", cfgText)

        from DIRAC.DataManagementSystem.Client.DataManager import DataManager

        self.db = sqliteCatalogDB(self.work / "fc.sqlite")
        self.dm = DataManager(fileCatalog=DBCatalog(self.db, CATALOG_USER))

    def upload(self) -> None:
        """N random files, uploaded and registered with one putAndRegister (timed, for information)."""
        count, size = self.options.files, self.options.size_mib * MiB
        source = self.work / "src"
        source.mkdir()
        self.sources: dict[str, Path] = {}
        for index in range(count):
            path = source / f"f{index:04d}.dat"
            path.write_bytes(os.urandom(size))
            self.sources[f"{HOME}/bench/f{index:04d}.dat"] = path
        self.lfns = list(self.sources)
        start = time.perf_counter()
        result = self.dm.putAndRegister({lfn: str(path) for lfn, path in self.sources.items()}, None, S3_SE)
        self.putSeconds = time.perf_counter() - start
        expectAll(result, self.lfns, "putAndRegister")
        # the bucket keys of the LFNs (outside the timings): what the plain script downloads
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        byName = {os.path.basename(key): key for key in keys}
        if len(keys) != count or set(byName) != {path.name for path in self.sources.values()}:
            raise BenchmarkError(f"the bucket holds {len(keys)} objects, expected {count}")
        self.keys = {lfn: byName[os.path.basename(lfn)] for lfn in self.lfns}

    # -- the two ways

    def ours(self) -> None:
        cache = self.work / "cache"
        cache.mkdir(exist_ok=True)
        start = time.perf_counter()
        result = self.dm.replicateAndRegister(self.lfns, FILE_SE, localCache=str(cache))
        self.times["ours"].append(time.perf_counter() - start)
        done = expectAll(result, self.lfns, "replicateAndRegister")
        notCopied = [lfn for lfn, info in done.items() if "local copy" not in str(info.get("transfer", ""))]
        if notCopied:
            raise BenchmarkError(f"{len(notCopied)} LFNs were not copied, e.g. {notCopied[0]}: {done[notCopied[0]]}")
        replicas = expectAll(self.db.getReplicas(self.lfns, CATALOG_USER), self.lfns, "getReplicas")
        if any(set(ses) != {S3_SE, FILE_SE} for ses in replicas.values()):
            raise BenchmarkError("the catalog does not list both replicas of every LFN")
        for lfn, path in self.sources.items():
            stored = self.fileRoot / lfn.lstrip("/")
            if not stored.is_file() or not filecmp.cmp(path, stored, shallow=False):
                raise BenchmarkError(f"the File SE copy of {lfn} ({stored}) differs from its source")
        left = [str(item) for item in cache.rglob("*")]
        if left:
            raise BenchmarkError(f"the local cache still holds {len(left)} entries, e.g. {left[0]}")
        expectAll(self.dm.removeReplica(FILE_SE, self.lfns), self.lfns, "removeReplica (between rounds)")

    def plain(self) -> None:
        dest = self.work / "plain"
        temporary = Path(tempfile.mkdtemp(dir=self.work, prefix="plain-tmp-"))
        start = time.perf_counter()
        for lfn, key in self.keys.items():
            local = temporary / os.path.basename(key)
            self.client.download_file(self.bucket, key, str(local))
            target = dest / lfn.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, target)
            local.unlink()
        self.times["plain"].append(time.perf_counter() - start)
        for lfn, path in self.sources.items():
            if not filecmp.cmp(path, dest / lfn.lstrip("/"), shallow=False):
                raise BenchmarkError(f"the plain copy of {lfn} differs from its source")
        shutil.rmtree(dest)
        temporary.rmdir()

    # -- report

    def printTable(self) -> None:
        count, size = self.options.files, self.options.size_mib
        total = count * size
        ours, plain = min(self.times["ours"]), min(self.times["plain"])
        rows = [
            (f"putAndRegister -> {S3_SE} (info)", [self.putSeconds], ""),
            (f"replicateAndRegister {S3_SE} -> {FILE_SE}", self.times["ours"], f"{ours / plain:.2f}"),
            ("boto3 download_file + copy, serial", self.times["plain"], "1.00"),
        ]
        line = "{:<42} {:>5} {:>5} {:>7} {:>8} {:>7} {:>10}"
        print()
        print(line.format("operation", "files", "MiB", "best s", "median s", "MiB/s", "ours/plain"))
        for name, times, ratio in rows:
            best = min(times)
            median = statistics.median(times)
            print(line.format(name, count, total, f"{best:.2f}", f"{median:.2f}", f"{total / best:.1f}", ratio))
        for note in self.notes:
            print(f"note: {note}")

    def run(self) -> int:
        loadBefore = loadAverage()
        self.startServer()
        self.configure()
        self.upload()
        for round_ in range(self.options.repeat):
            steps = (self.ours, self.plain) if round_ % 2 == 0 else (self.plain, self.ours)
            for step in steps:
                step()
            print(
                f"round {round_ + 1}: ours {self.times['ours'][-1]:.2f}s, plain {self.times['plain'][-1]:.2f}s",
                flush=True,
            )
        self.notes.append(f"{loadNote(loadBefore, loadAverage())}; loopback, rclone local disk")
        self.notes.append(
            "ours includes: catalog metadata/replica look-ups, adler32 of each download checked against the catalog, "
            "checked upload to the File SE, addReplica, temporary-copy clean-up"
        )
        self.printTable()
        return 0


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argumentParser(__doc__.split("\n\n")[0], quick="smoke run: 20 files, 1 round unless given")
    parser.add_argument("--files", type=int, default=None, help="number of files (default 100; --quick 20)")
    parser.add_argument("--size-mib", type=int, default=1, help="size of each file in MiB (default 1)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds, the best is reported (default 3; --quick 1)")
    return parseOptions(parser, argv, ("files", "size_mib", "repeat"), files=(20, 100), repeat=(1, 3))


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    return runInTemporaryFolder("bench-dm-", options, lambda work: DataManagerBenchmark(options, work))


if __name__ == "__main__":
    sys.exit(main())

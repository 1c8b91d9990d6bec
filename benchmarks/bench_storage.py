"""Storage benchmark: our ``StorageElement`` over ``S3Storage`` next to plain serial boto3.

Starts its own ``rclone serve s3`` on 127.0.0.1 (stopped by its PID at the end, also on error)
and, in the same run and against the same server:

* N small files (default 1000 x 10 KiB): ``putFile``, ``exists``, ``getFileMetadata``,
  ``getFile``, ``removeFile`` as one bulk call each, against boto3 ``put_object``,
  ``head_object`` (twice: exists, metadata), ``get_object`` to a file, ``delete_object`` done
  one after the other (serially) on one client. Target: ours at least 3x faster.
* One big file (default 1 GiB): ``putFile`` / ``getFile`` against boto3 ``upload_file`` /
  ``download_file`` (default ``TransferConfig``). Target: ours within 10% of boto3. Each big
  transfer runs in a fresh child process (multiprocessing, spawn) that reports its own peak RSS
  (``VmHWM``, absolute, nothing subtracted; see ``_common.maxRssMB``). Target: ours under 300 MB.

Verification (sizes, bytes, adler32) happens outside the timed sections. Run::

    python benchmarks/bench_storage.py            # full size (a few minutes)
    python benchmarks/bench_storage.py --quick    # smoke run: 100 files, 64 MiB

Exit status: 0 when every phase ran and verified (targets may still be MISS), 1 on an error or a
verification failure, 2 when the big-file phases were skipped (not enough free disk space).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

# Nothing heavy is imported at module level (_common neither): a spawned child re-imports this module,
# and its peak RSS must hold only what its own transfer needs (boto3 for the boto3 child, DIRAC for ours).
from _common import (
    MB,
    BenchmarkError,
    KiB,
    MiB,
    argumentParser,
    bigFileSpaceOK,
    bigTransfer,
    botoClient,
    expectAll,
    loadAverage,
    loadConfiguration,
    loadNote,
    parseOptions,
    printTable,
    runInTemporaryFolder,
    startRclone,
    stopRclone,
    timed,
    writeBigFile,
    writeSmallFiles,
)

SE_NAME = "S3-BENCH"
SMALL_TARGET = 3.0  # boto3 seconds / our seconds, at least
BIG_TARGET = 1.1  # our seconds / boto3 seconds, at most
RSS_TARGET_MB = 300.0  # peak RSS of the process doing our big transfer, below


# ---------------------------------------------------------------- the benchmark


@dataclass
class Row:
    phase: str
    ours: float
    boto: float
    kind: str  # "small": boto/ours >= 3; "big": ours/boto <= 1.1; "rss": ours < 300 MB

    def ratioText(self) -> str:
        if self.kind == "rss":
            return ""
        return f"{self.boto / self.ours:.2f}x" if self.ours > 0 else "inf"

    def target(self) -> str:
        return {
            "small": f">= {SMALL_TARGET:.1f}x",
            "big": f">= {1 / BIG_TARGET:.2f}x (ours <= {BIG_TARGET} x boto3)",
            "rss": f"ours < {RSS_TARGET_MB:.0f} MB",
        }[self.kind]

    def passed(self) -> bool:
        if self.kind == "small":
            return self.boto >= SMALL_TARGET * self.ours
        if self.kind == "big":
            return self.ours <= BIG_TARGET * self.boto
        return self.ours < RSS_TARGET_MB


def printRows(rows: list[Row], title: str) -> None:
    header = ("phase", "ours", "boto3", "boto3/ours", "target", "result")
    lines = []
    for row in rows:
        unit = " MB" if row.kind == "rss" else " s"
        lines.append(
            (
                row.phase,
                f"{row.ours:.3f}{unit}" if row.kind != "rss" else f"{row.ours:.0f}{unit}",
                f"{row.boto:.3f}{unit}" if row.kind != "rss" else f"{row.boto:.0f}{unit}",
                row.ratioText(),
                row.target(),
                "PASS" if row.passed() else "MISS",
            )
        )
    printTable(header, lines, title)


class StorageBenchmark:
    def __init__(self, options: argparse.Namespace, work: Path):
        self.options = options
        self.work = work
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.server = None  # s3_fixtures.S3Server

    # -- set-up

    def startServer(self) -> None:
        self.server = startRclone(self.work)

    def tearDown(self) -> None:
        stopRclone(self.server)

    def configure(self) -> None:
        """Two buckets (ours, boto3's) and the SE's dirac.cfg, loaded into this process."""
        self.client = botoClient(self.server.endpoint_url, self.server.access_key, self.server.secret_key)
        self.oursBucket, self.botoBucket = "bench-ours", "bench-boto3"
        for bucket in (self.oursBucket, self.botoBucket):
            self.client.create_bucket(Bucket=bucket)
        from s3_fixtures import s3_se_cfg

        self.cfgPath = self.work / "dirac.cfg"
        loadConfiguration(self.cfgPath, s3_se_cfg(SE_NAME, self.server, self.oursBucket))
        from DIRAC.Resources.Storage.StorageElement import StorageElement

        self.se = StorageElement(SE_NAME)
        if not self.se.valid:
            raise BenchmarkError(f"SE {SE_NAME}: {self.se.errorReason}")
        # warm both up (first connection, lazy imports) outside the timed sections
        self.se.exists("/bench/warm-up")
        self.client.head_bucket(Bucket=self.botoBucket)

    # -- small files

    def smallFiles(self) -> None:
        count, size = self.options.files, self.options.size_kib * KiB
        source = self.work / "small-src"
        files = {f"/bench/small/{path.name}": str(path) for path in writeSmallFiles(source, count, size)}
        lfns = list(files)
        keys = [lfn.lstrip("/") for lfn in lfns]
        oursOut, botoOut = self.work / "small-ours", self.work / "small-boto3"
        oursOut.mkdir()
        botoOut.mkdir()
        se, client, bucket = self.se, self.client, self.botoBucket
        times: dict[str, tuple[list[float], list[float]]] = {}

        def record(phase: str, ours: float, boto: float) -> None:
            times.setdefault(phase, ([], []))
            times[phase][0].append(ours)
            times[phase][1].append(boto)
            print(f"  {phase}: ours {ours:.3f} s, boto3 {boto:.3f} s", flush=True)

        def botoPut():
            for key, path in zip(keys, files.values(), strict=True):
                with open(path, "rb") as body:
                    client.put_object(Bucket=bucket, Key=key, Body=body)

        def botoExists():
            found = 0
            for key in keys:
                client.head_object(Bucket=bucket, Key=key)
                found += 1
            return found

        def botoMetadata():
            return {key: client.head_object(Bucket=bucket, Key=key)["ContentLength"] for key in keys}

        def botoGet():
            for key in keys:
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                with open(botoOut / os.path.basename(key), "wb") as handle:
                    for chunk in body.iter_chunks(1 * MiB):
                        handle.write(chunk)

        def botoRemove():
            for key in keys:
                client.delete_object(Bucket=bucket, Key=key)

        for round_ in range(self.options.repeat):
            print(f" round {round_ + 1} of {self.options.repeat}", flush=True)
            for folder in (oursOut, botoOut):
                for old in folder.iterdir():
                    old.unlink()
            # putFile
            ours, result = timed(se.putFile, files)
            sizes = expectAll(result, lfns, "putFile")
            if set(sizes.values()) != {size}:
                raise BenchmarkError(f"putFile reported sizes {set(sizes.values())}, expected {size}")
            boto, _ = timed(botoPut)
            record("putFile", ours, boto)

            # exists
            ours, result = timed(se.exists, lfns)
            if not all(expectAll(result, lfns, "exists").values()):
                raise BenchmarkError("exists: some uploaded file is reported missing")
            boto, found = timed(botoExists)
            if found != count:
                raise BenchmarkError(f"boto3 head_object found {found} of {count}")
            record("exists", ours, boto)

            # getFileMetadata
            ours, result = timed(se.getFileMetadata, lfns)
            metadata = expectAll(result, lfns, "getFileMetadata")
            boto, botoSizes = timed(botoMetadata)
            for lfn, path in files.items():
                meta = metadata[lfn]
                expected = f"{zlib.adler32(Path(path).read_bytes()):08x}"
                if meta["Size"] != size or meta["Checksum"].lower().zfill(8) != expected:
                    raise BenchmarkError(f"getFileMetadata {lfn}: {meta} (expected size {size}, adler32 {expected})")
            if set(botoSizes.values()) != {size}:
                raise BenchmarkError(f"boto3 head_object sizes {set(botoSizes.values())}")
            record("getFileMetadata", ours, boto)

            # getFile
            ours, result = timed(se.getFile, lfns, localPath=str(oursOut))
            expectAll(result, lfns, "getFile")
            boto, _ = timed(botoGet)
            for lfn, path in files.items():
                original = Path(path).read_bytes()
                name = os.path.basename(lfn)
                if (oursOut / name).read_bytes() != original or (botoOut / name).read_bytes() != original:
                    raise BenchmarkError(f"getFile {lfn}: downloaded bytes differ from the source")
            record("getFile", ours, boto)

            # removeFile
            ours, result = timed(se.removeFile, lfns)
            expectAll(result, lfns, "removeFile")
            boto, _ = timed(botoRemove)
            left = self.client.list_objects_v2(Bucket=self.oursBucket).get("KeyCount", 0)
            left += self.client.list_objects_v2(Bucket=self.botoBucket).get("KeyCount", 0)
            if left:
                raise BenchmarkError(f"removeFile: {left} objects left in the buckets")
            record("removeFile", ours, boto)
        label = f"{count} x {self.options.size_kib} KiB"
        for phase, (ours, boto) in times.items():
            self.rows.append(Row(f"{phase:<15s} {label}", min(ours), min(boto), "small"))
            if len(ours) > 1:
                self.notes.append(
                    f"{phase} {label} every round (s): ours {' '.join(f'{t:.3f}' for t in ours)}; "
                    f"boto3 {' '.join(f'{t:.3f}' for t in boto)}"
                )
        for folder in (source, oursOut, botoOut):
            shutil.rmtree(folder)

    # -- big file

    def bigFile(self) -> None:
        size = self.options.big_mib * MiB
        source = self.work / "big-src" / "big.dat"
        source.parent.mkdir()
        adler = writeBigFile(source, size)
        lfn = "/bench/big/big.dat"
        key = lfn.lstrip("/")
        label = f"{self.options.big_mib} MiB"
        server = self.server
        common = {
            "cfg": str(self.cfgPath),
            "se": SE_NAME,
            "lfn": lfn,
            "path": str(source),
            "endpoint": server.endpoint_url,
            "accessKey": server.access_key,
            "secretKey": server.secret_key,
            "bucket": self.botoBucket,
        }
        results = {}
        for op in ("put", "get"):
            for tool in ("ours", "boto3"):
                answer = results[tool, op] = bigTransfer(self.work, {**common, "tool": tool, "op": op}, size, adler)
                print(
                    f"  {op} {label} {tool}: {answer['seconds']:.2f} s "
                    f"({size / MB / answer['seconds']:.0f} MB/s), peak RSS {answer['rssPeak']:.0f} MB "
                    f"(before the transfer {answer['rssBefore']:.0f} MB)",
                    flush=True,
                )
                if op == "put":
                    self.verifyBigObject(tool, key, size, adler)
        self.client.delete_object(Bucket=self.oursBucket, Key=key)
        self.client.delete_object(Bucket=self.botoBucket, Key=key)
        source.unlink()
        transfers = [(f"{op}File", results["ours", op], results["boto3", op]) for op in ("put", "get")]
        for name, ours, boto in transfers:
            self.rows.append(Row(f"{name} {label}", ours["seconds"], boto["seconds"], "big"))
        for name, ours, boto in transfers:
            self.rows.append(Row(f"peak RSS {name} {label}", ours["rssPeak"], boto["rssPeak"], "rss"))
            self.notes.append(
                f"peak RSS {name} {label}: ours {ours['rssPeak']:.0f} MB "
                f"(the same child before the transfer: {ours['rssBefore']:.0f} MB), boto3 {boto['rssPeak']:.0f} MB "
                f"(before: {boto['rssBefore']:.0f} MB)"
            )

    def verifyBigObject(self, tool: str, key: str, size: int, adler: int) -> None:
        """The uploaded object has the right size (and, for ours, the right stored adler32)."""
        bucket = self.oursBucket if tool == "ours" else self.botoBucket
        head = self.client.head_object(Bucket=bucket, Key=key)
        if head["ContentLength"] != size:
            raise BenchmarkError(f"{tool} put: object has {head['ContentLength']} bytes, expected {size}")
        if tool == "ours":
            stored = {name.lower(): value for name, value in head.get("Metadata", {}).items()}.get("checksum", "")
            if stored.lower().zfill(8) != f"{adler:08x}":
                raise BenchmarkError(f"ours put: stored checksum {stored!r}, the file's adler32 is {adler:08x}")

    # -- driver

    def run(self) -> int:
        status = 0
        loadBefore = loadAverage()
        self.startServer()
        self.configure()
        print(f"small files: {self.options.files} x {self.options.size_kib} KiB", flush=True)
        self.smallFiles()
        if bigFileSpaceOK(self.work, self.options.big_mib, self.notes):
            print(f"big file: {self.options.big_mib} MiB (each transfer in a fresh spawned process)", flush=True)
            self.bigFile()
        else:
            status = 2
        title = (
            f"Storage benchmark against rclone serve s3 on 127.0.0.1 ({os.cpu_count()} cores): "
            "our StorageElement (bulk calls) vs plain boto3 (serial)"
        )
        title += f", small files best of {self.options.repeat} rounds"
        printRows(self.rows, title)
        self.notes.append(loadNote(loadBefore, loadAverage()))
        for note in self.notes:
            print(f"note: {note}")
        missed = [row.phase.split()[0] + " " + row.phase.split()[-1] for row in self.rows if not row.passed()]
        print(f"targets: {len(self.rows) - len(missed)} PASS, {len(missed)} MISS", flush=True)
        return status


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argumentParser(__doc__.split("\n\n")[0], files="number of small files", bigFile=True)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of the small-file phases, the best is reported (default 3)"
    )
    positive = ("files", "size_kib", "big_mib", "repeat")
    return parseOptions(parser, argv, positive, files=(100, 1000), big_mib=(64, 1024))


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    return runInTemporaryFolder("bench-storage-", options, lambda work: StorageBenchmark(options, work))


if __name__ == "__main__":
    sys.exit(main())

"""Replication benchmark (issue 14): ``DataManager.replicateAndRegister``'s three ways next to serial boto3.

Starts two ``rclone serve s3`` on 127.0.0.1 (A and B, local backend, SigV4 checked) and one
``@20minutes/s3rver`` (C, SigV4 checked, does ``UploadPartCopy``; left out with a note when node or
the package is missing), each behind its own delaying TCP relay (``tests/fault_relay.py`` in a child
process, the one of ``bench_s3_distance.py``): every S3 request of the client crosses a relay, so each added round trip
(``--delays``, default 0 and 20 ms) applies between the client and each server. The SEs, all keyed:
``S3-SRC`` (A, bucket ``src``), ``S3-SAME`` (A, bucket ``same``), ``S3-SAME-WHOLE`` (A, bucket ``whole``,
``MultipartThreshold = 5 GiB``), ``S3-OTHER`` (B, bucket ``other``), ``S3RVER-SRC`` and ``S3RVER-SAME``
(C, buckets ``src`` and ``same``); the catalog is a real ``FileCatalogDB`` on an SQLite file, given to
``DataManager(fileCatalog=...)``.

Two file sets are uploaded to ``S3-SRC`` and registered first (``putAndRegister``, then replicated to
``S3RVER-SRC``; not timed): one big file (``--big-mib``, default 1 GiB) and ``--files`` small ones
(default 1,000 x 1 MiB). For each file set and each round trip, six cases, each in a fresh spawned
process whose peak RSS (``VmHWM``) is read, while the bytes crossing the relays are counted (the
source is ``S3-SRC`` unless named):

* ``server-side``: ``replicateAndRegister(lfns, 'S3-SAME')``: two buckets of one service; a file above
  the default multipart threshold (16 MiB) is copied in parts (``UploadPartCopy``), which rclone cannot
  do: such a file falls back to a streamed copy;
* ``server-side, threshold 5 GiB``: the same to ``S3-SAME-WHOLE``, where every file up to 5 GiB is one
  ``CopyObject`` (what a site whose S3 cannot copy parts would configure);
* ``server-side, s3rver``: ``replicateAndRegister(lfns, 'S3RVER-SAME', sourceSE='S3RVER-SRC')``: a file
  above 16 MiB is copied in parts (``UploadPartCopy``), a smaller one with ``CopyObject``;
* ``streamed``: ``replicateAndRegister(lfns, 'S3-OTHER')``: two services;
* ``local file``: ``replicateAndRegister(lfns, 'S3-OTHER', localCache=folder)``;
* ``boto3``: the peer, what DIRAC's approach amounts to: one boto3 client per server, and for each
  file one after the other ``download_file`` to a temporary file, ``upload_file`` to B, remove it.

The way each copy actually took is the one ``replicateAndRegister`` names in
``Successful[lfn]['transfer']`` (a way that cannot copy a file falls back to the next one).
Each case runs with its own empty folder as ``localCache`` (the local file), as ``TMPDIR`` (every
other way: a fall-back to a local copy lands there) or as the peer's temporary folder; the
benchmark samples the bytes that folder holds on disk while the case runs and reports the peak.
The timing covers the replication call (the peer's loop) only: making the ``DataManager`` and a
warm-up replication of one 1 KiB file (clients connected, SEs made) come before it.

Checks, outside the timings (a failed case is shown as FAILED, the run ends with status 1):
every LFN Successful, the catalog lists the new replica, every copy holds its source's bytes
(compared with rclone A's file: on disk for rclone, read back from s3rver), the case's folder is
empty afterwards. Between cases the new replicas are removed (``removeReplica``; the peer's objects
with boto3) and the destination bucket is checked empty (no object, no unfinished multipart upload where the server
lists them: s3rver does not). Run::

    .venv/bin/python benchmarks/bench_datamanager.py            # 1 GiB and 1000 x 1 MiB at 0 and 20 ms (~10 min)
    .venv/bin/python benchmarks/bench_datamanager.py --quick    # 64 MiB and 100 x 1 MiB (about a minute)

Exit status: 0 when every case ran and verified, 1 when one failed, 2 when there was no room on disk.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
import threading
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from _common import (
    CATALOG_USER,
    DISK_MARGIN,
    MB,
    WRITE_CHUNK,
    BenchmarkError,
    KiB,
    MiB,
    argumentParser,
    botoClient,
    cpuSeconds,
    expectAll,
    loadAverage,
    loadConfiguration,
    loadNote,
    maxRssMB,
    parseOptions,
    printTable,
    runChild,
    runInTemporaryFolder,
    sqliteCatalogDB,
    startRclone,
    timed,
    useTestHelpers,
    writeBigFile,
    writeSmallFiles,
)
from bench_s3_distance import RelayProcess

SOURCE_SE, SAME_SE, WHOLE_SE, OTHER_SE = "S3-SRC", "S3-SAME", "S3-SAME-WHOLE", "S3-OTHER"
PARTS_SOURCE_SE, PARTS_SE = "S3RVER-SRC", "S3RVER-SAME"  # on s3rver, which does UploadPartCopy
BUCKETS = {SOURCE_SE: "src", SAME_SE: "same", WHOLE_SE: "whole", OTHER_SE: "other", PARTS_SOURCE_SE: "src"}
BUCKETS[PARTS_SE] = "same"
SE_SERVER = {SOURCE_SE: "A", SAME_SE: "A", WHOLE_SE: "A", OTHER_SE: "B", PARTS_SOURCE_SE: "C", PARTS_SE: "C"}
# rclone has no UploadPartCopy: with S3's largest single copy as its multipart threshold, this SE copies
# every file up to 5 GiB with one CopyObject (what a site whose S3 cannot copy parts would configure)
SE_OPTIONS = {WHOLE_SE: {"MultipartThreshold": 5 * 1024 * MiB}}
PEER_BUCKET = "peer"  # on B, where the boto3 peer uploads
HOME = "/vo/user/a/alice"
WARM_LFN = f"{HOME}/warm/warm.dat"
DISK_SAMPLE_SECONDS = 0.01
DELETE_BATCH = 1000  # keys per DeleteObjects request


@dataclass(frozen=True)
class Way:
    """One case of the table: where ``replicateAndRegister`` copies to (None: the boto3 peer)."""

    name: str
    destination: str | None
    localCache: bool = False
    source: str = SOURCE_SE


PEER = Way("boto3", None)
WAYS = (
    PEER,
    Way("server-side", SAME_SE),
    Way("server-side, threshold 5 GiB", WHOLE_SE),
    Way("server-side, s3rver", PARTS_SE, source=PARTS_SOURCE_SE),
    Way("streamed", OTHER_SE),
    Way("local file", OTHER_SE, localCache=True),
)


@dataclass
class FileSet:
    """Files registered at ``S3-SRC`` that every case copies."""

    label: str
    lfns: list[str]
    size: int  # bytes per file

    @property
    def total(self) -> int:
        return self.size * len(self.lfns)


@dataclass
class Row:
    fileSet: FileSet
    delayMs: int
    way: Way
    seconds: float | None = None
    cpu: float | None = None  # CPU seconds of the process doing the copy, during the timed call
    rssPeak: float | None = None
    rssBefore: float | None = None
    diskPeak: int = 0
    relayed: int = 0  # bytes that crossed the relays (between the client and the servers) during the case
    used: str = ""  # the ways the copies took, as counted from Successful[lfn]['transfer']
    error: str = ""


def key(lfn: str) -> str:
    """The object key of an LFN in its SE's bucket (no key prefix configured)."""
    return lfn.lstrip("/")


# ---------------------------------------------------------------- the case, in a fresh process


def _caseChild(connection, job: dict) -> None:
    """One case in this fresh process: set up and warm up, time the copy, send seconds, RSS and the ways used."""
    try:
        tempfile.tempdir = job["folder"]  # a local copy without localCache lands in the case's folder
        os.environ["TMPDIR"] = job["folder"]
        useTestHelpers()
        call = _peerCopy(job) if job["destination"] is None else _replication(job)
        rssBefore, cpuBefore = maxRssMB(), cpuSeconds()
        seconds, value = timed(call)
        rssPeak, cpu = maxRssMB(), cpuSeconds() - cpuBefore
        if job["destination"] is None:
            used = {"download + upload (boto3)": len(job["lfns"])}
        else:
            done = expectAll(value, job["lfns"], f"replicateAndRegister to {job['destination']}")
            used = dict(Counter(str(info.get("transfer")) for info in done.values()))
        answer = {"seconds": seconds, "cpu": cpu, "rssBefore": rssBefore, "rssPeak": rssPeak, "used": used}
        connection.send({"ok": True, **answer})
    except BaseException as exc:  # report anything, the parent decides
        connection.send({"ok": False, "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})
    finally:
        connection.close()


def _replication(job: dict):
    """A DataManager on the benchmark's catalog, warmed up by copying one small file the same way; the timed call."""
    from catalog_fixtures import DBCatalog

    loadConfiguration(job["cfg"])
    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    dm = DataManager(fileCatalog=DBCatalog(sqliteCatalogDB(Path(job["catalog"])), CATALOG_USER))
    destination, source = job["destination"], job["source"]
    localCache = job["folder"] if job["localCache"] else ""
    warmed = dm.replicateAndRegister([WARM_LFN], destination, sourceSE=source, localCache=localCache)
    expectAll(warmed, [WARM_LFN], "warm-up")
    return lambda: dm.replicateAndRegister(job["lfns"], destination, sourceSE=source, localCache=localCache)


def _peerCopy(job: dict):
    """Two boto3 clients (connected); the timed loop: download each file to a temporary file, upload it, remove it."""
    source = botoClient(job["sourceEndpoint"], job["sourceKeys"][0], job["sourceKeys"][1])
    target = botoClient(job["targetEndpoint"], job["targetKeys"][0], job["targetKeys"][1])
    source.head_bucket(Bucket=BUCKETS[SOURCE_SE])
    target.head_bucket(Bucket=PEER_BUCKET)

    def copyAll() -> None:
        for lfn in job["lfns"]:
            handle, local = tempfile.mkstemp(dir=job["folder"])
            os.close(handle)
            source.download_file(BUCKETS[SOURCE_SE], key(lfn), local)
            target.upload_file(local, PEER_BUCKET, key(lfn))
            os.unlink(local)

    return copyAll


# ---------------------------------------------------------------- disk sampling


def diskUsage(folder: Path) -> int:
    """Bytes the files under ``folder`` hold on disk (allocated blocks); files vanishing meanwhile are skipped."""
    total, pending = 0, [str(folder)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


class DiskSampler:
    """Samples ``diskUsage(folder)`` in a thread while in the ``with`` block; ``peak`` is the largest seen."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="DiskSampler", daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, diskUsage(self.folder))
            if self._stop.wait(DISK_SAMPLE_SECONDS):
                return

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, diskUsage(self.folder))


def startS3rver(work: Path):
    """``@20minutes/s3rver`` (does UploadPartCopy) over ``work/data`` on a free 127.0.0.1 port: an ``S3Server``."""
    from s3_fixtures import S3Server, _s3rver_command, start_server

    accessKey, secretKey = "bench-access", f"bench-secret-{uuid.uuid4().hex}"
    log = work / "s3rver.log"
    process, port = start_server(lambda p: _s3rver_command(p, work / "data", accessKey, secretKey), log)
    server = S3Server("s3rver", port, accessKey, secretKey, process, log=log)
    print(f"s3rver PID {process.pid} on {server.endpoint_url}, data {work / 'data'}", flush=True)
    return server


# ---------------------------------------------------------------- checks


def unfinishedUploads(client, bucket: str) -> int | None:
    """How many multipart uploads in ``bucket`` are neither completed nor aborted (None: the server cannot tell)."""
    from botocore.exceptions import ClientError

    try:
        return len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "NoSuchUpload":
            return 0  # rclone's answer for a bucket that never had one
        if code == "NotImplemented":
            return None  # s3rver
        raise


# ---------------------------------------------------------------- the benchmark


class ReplicationBenchmark:
    def __init__(self, options: argparse.Namespace, work: Path) -> None:
        self.options = options
        self.work = work
        self.servers: dict[str, object] = {}  # "A", "B" (rclone), "C" (s3rver) -> s3_fixtures.S3Server
        self.relays: dict[str, RelayProcess] = {}
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.cases = 0

    def tearDown(self) -> None:
        from DIRAC.Core.Utilities.Subprocesses import stopProcess

        for name, relay in self.relays.items():
            relay.stop()
            print(f"relay {name} PID {relay.process.pid} stopped", flush=True)
        for server in self.servers.values():
            stopProcess(server.process)
            print(f"{server.name} PID {server.pid} stopped", flush=True)

    # -- set-up

    def setUp(self) -> None:
        """The servers with a relay each, the buckets, the SEs (through the relays), catalog, DataManager."""
        from catalog_fixtures import DBCatalog
        from s3_fixtures import merge_cfg, s3_se_cfg, s3rver_missing

        for name in ("A", "B", "C"):
            (self.work / name).mkdir()
            if name == "C" and s3rver_missing():
                self.notes.append(f"no s3rver rows: {s3rver_missing()}")
                continue
            server = self.servers[name] = (
                startS3rver(self.work / name) if name == "C" else startRclone(self.work / name)
            )
            relay = self.relays[name] = RelayProcess(server.port)
            print(f"relay {name} PID {relay.process.pid} on port {relay.port} -> {server.port}", flush=True)
        self.ses = {se: name for se, name in SE_SERVER.items() if name in self.servers}
        self.ways = [way for way in WAYS if way.destination is None or way.destination in self.ses]
        self.admin = {name: botoClient(s.endpoint_url, s.access_key, s.secret_key) for name, s in self.servers.items()}
        for se, name in self.ses.items():
            self.admin[name].create_bucket(Bucket=BUCKETS[se])
        self.admin["B"].create_bucket(Bucket=PEER_BUCKET)
        self.cfg = self.work / "dirac.cfg"
        texts = [
            s3_se_cfg(se, self.servers[name], BUCKETS[se], Port=self.relays[name].port, **SE_OPTIONS.get(se, {}))
            for se, name in self.ses.items()
        ]
        loadConfiguration(self.cfg, merge_cfg(*texts))
        from DIRAC.DataManagementSystem.Client.DataManager import DataManager

        self.catalog = self.work / "fc.sqlite"
        self.db = sqliteCatalogDB(self.catalog)
        self.dm = DataManager(fileCatalog=DBCatalog(self.db, CATALOG_USER))

    def spaceOK(self) -> bool:
        """Room for the sources (here, at A and at C), one copy and one local file of the biggest set (+ margin)?"""
        total = self.options.big_mib * MiB + self.options.files * self.options.size_mib * MiB
        biggest = max(self.options.big_mib * MiB, self.options.files * self.options.size_mib * MiB)
        needed, free = 3 * total + 2 * biggest + DISK_MARGIN, shutil.disk_usage(self.work).free
        print(f"free space under {self.work}: {free / 2**30:.1f} GiB, needed {needed / 2**30:.1f} GiB", flush=True)
        if free >= needed:
            return True
        self.notes.append(
            f"NOT ENOUGH DISK SPACE: {free / 2**30:.1f} GiB free under {self.work}, {needed / 2**30:.1f} GiB needed; "
            "nothing run (use --tmpdir on a bigger disk, or smaller --big-mib / --files)"
        )
        return False

    def register(self, files: dict[str, Path]) -> None:
        """Upload and register ``{lfn: path}`` at S3-SRC, copy them to S3RVER-SRC (relays at 0 ms, both checked),
        then drop the local sources."""
        lfns = list(files)
        result = self.dm.putAndRegister({lfn: str(path) for lfn, path in files.items()}, None, SOURCE_SE)
        expectAll(result, lfns, f"putAndRegister of {len(files)} files to {SOURCE_SE}")
        if PARTS_SOURCE_SE in self.ses:
            result = self.dm.replicateAndRegister(lfns, PARTS_SOURCE_SE, sourceSE=SOURCE_SE)
            expectAll(result, lfns, f"replicateAndRegister of {len(files)} files to {PARTS_SOURCE_SE}")
        for lfn, path in files.items():
            for se in (SOURCE_SE, PARTS_SOURCE_SE):
                if se in self.ses and not self.holds(se, lfn, path):
                    raise BenchmarkError(f"the object of {lfn} at {se} differs from its source")
            path.unlink()

    def fileSets(self) -> list[FileSet]:
        """The warm-up file, the big file and the small files, registered at S3-SRC; the two sets to copy."""
        sources = self.work / "sources"
        sources.mkdir()
        warm = sources / "warm.dat"
        warm.write_bytes(os.urandom(KiB))
        self.register({WARM_LFN: warm})
        sets = []
        if self.options.big_mib:
            big = sources / "big.dat"
            writeBigFile(big, self.options.big_mib * MiB)
            self.register({f"{HOME}/big/big.dat": big})
            sets.append(FileSet(f"1 x {self.options.big_mib} MiB", [f"{HOME}/big/big.dat"], self.options.big_mib * MiB))
        size = self.options.size_mib * MiB
        small = writeSmallFiles(sources / "small", self.options.files, size)
        lfns = [f"{HOME}/small/{path.name}" for path in small]
        self.register(dict(zip(lfns, small, strict=True)))
        sets.append(FileSet(f"{self.options.files} x {self.options.size_mib} MiB", lfns, size))
        return sets

    def setDelay(self, milliseconds: int) -> None:
        for relay in self.relays.values():
            relay.setRoundTrip(milliseconds)

    def bytesRelayed(self) -> int:
        return sum(relay.bytesForwarded() for relay in self.relays.values())

    def sourcePath(self, lfn: str) -> Path:
        """The file rclone A keeps for ``lfn`` at S3-SRC: the reference every copy is compared with."""
        return self.servers["A"].object_path(BUCKETS[SOURCE_SE], key(lfn))

    def holds(self, se: str, lfn: str, reference: Path) -> bool:
        """Does ``lfn``'s object at ``se`` hold exactly ``reference``'s bytes?"""
        return self.objectEquals(SE_SERVER[se], BUCKETS[se], key(lfn), reference)

    def objectEquals(self, serverName: str, bucket: str, objectKey: str, reference: Path) -> bool:
        """Does ``bucket/objectKey`` on a server hold exactly ``reference``'s bytes? rclone: its file compared on
        disk; another server: the object read back."""
        from botocore.exceptions import ClientError

        server = self.servers[serverName]
        if server.root is not None:
            copy = server.object_path(bucket, objectKey)
            return copy.is_file() and filecmp.cmp(reference, copy, shallow=False)
        try:
            body = self.admin[serverName].get_object(Bucket=bucket, Key=objectKey)["Body"]
        except ClientError:
            return False
        with open(reference, "rb") as handle:
            if any(handle.read(len(chunk)) != chunk for chunk in body.iter_chunks(WRITE_CHUNK)):
                return False
            return handle.read(1) == b""

    # -- one case

    def job(self, way: Way, fileSet: FileSet, folder: Path) -> dict:
        """What the child needs for ``way`` (``tool``/``op`` name it in ``runChild``'s errors)."""
        job = {"tool": way.name, "op": f"copy of {fileSet.label}", "lfns": fileSet.lfns, "folder": str(folder)}
        job.update(destination=way.destination, source=way.source, localCache=way.localCache)
        job.update(cfg=str(self.cfg), catalog=str(self.catalog))
        for side, name in (("source", "A"), ("target", "B")):
            server = self.servers[name]
            job[f"{side}Endpoint"] = f"http://127.0.0.1:{self.relays[name].port}"
            job[f"{side}Keys"] = (server.access_key, server.secret_key)
        return job

    def runCase(self, fileSet: FileSet, delayMs: int, way: Way) -> Row:
        """Run one case at ``delayMs``; check and undo its copies at 0 ms. A failure of the way is the row's error."""
        self.cases += 1
        folder = self.work / "cases" / f"{self.cases:02d}"
        folder.mkdir(parents=True)
        row = Row(fileSet, delayMs, way)
        os.sync()  # the previous case's dirty pages are written before this one starts
        self.setDelay(delayMs)
        sampler = DiskSampler(folder)
        try:
            relayedBefore = self.bytesRelayed()
            with sampler:
                answer = runChild(self.job(way, fileSet, folder), _caseChild)
            row.relayed = self.bytesRelayed() - relayedBefore
            row.seconds, row.cpu = answer["seconds"], answer["cpu"]
            row.rssPeak, row.rssBefore = answer["rssPeak"], answer["rssBefore"]
            row.used = ", ".join(f"{name} x{count}" for name, count in answer["used"].items())
            self.setDelay(0)
            self.check(row, folder)
        except BenchmarkError as exc:
            row.error = str(exc).strip().splitlines()[0]
            print(f"  FAILED: {exc}", flush=True)
        finally:
            row.diskPeak = sampler.peak
            self.setDelay(0)
            self.undo(fileSet, way)
        return row

    def check(self, row: Row, folder: Path) -> None:
        """Catalog lists every new replica, every copy holds its source's bytes, nothing left in the case folder."""
        lfns, way = row.fileSet.lfns, row.way
        if way.destination is not None:
            replicas = expectAll(self.db.getReplicas(lfns, CATALOG_USER), lfns, "getReplicas")
            missing = [lfn for lfn in lfns if way.destination not in replicas[lfn]]
            if missing:
                raise BenchmarkError(f"{way.name}: the catalog lists no replica at {way.destination} for {missing[0]}")
        for lfn in lfns:
            if way.destination is None:
                same = self.objectEquals("B", PEER_BUCKET, key(lfn), self.sourcePath(lfn))
            else:
                same = self.holds(way.destination, lfn, self.sourcePath(lfn))
            if not same:
                raise BenchmarkError(f"{way.name}: the copy of {lfn} differs from its source")
        left = [str(path) for path in folder.rglob("*")]
        if left:
            raise BenchmarkError(f"{way.name}: {len(left)} entries left in the case folder, e.g. {left[0]}")

    def undo(self, fileSet: FileSet, way: Way) -> None:
        """Remove the case's copies (and the warm-up replica); the destination bucket must then hold no object
        and no unfinished multipart upload (where the server can list them)."""
        if way.destination is None:
            bucket, admin = PEER_BUCKET, self.admin["B"]
            keys = [key(lfn) for lfn in fileSet.lfns]
            for start in range(0, len(keys), DELETE_BATCH):
                objects = [{"Key": name} for name in keys[start : start + DELETE_BATCH]]
                admin.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        else:
            bucket, admin = BUCKETS[way.destination], self.admin[SE_SERVER[way.destination]]
            lfns = [*fileSet.lfns, WARM_LFN]
            expectAll(self.dm.removeReplica(way.destination, lfns), lfns, f"removeReplica at {way.destination}")
        left = admin.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        unfinished = unfinishedUploads(admin, bucket)
        if left or unfinished:
            raise BenchmarkError(
                f"{left} objects and {unfinished} unfinished multipart uploads left in bucket {bucket} after "
                f"removing the copies of {way.name}"
            )

    # -- driver

    def run(self) -> int:
        loadBefore = loadAverage()
        self.setUp()
        if not self.spaceOK():
            self.report(loadBefore)
            return 2
        fileSets = self.fileSets()
        for fileSet in fileSets:
            for delayMs in self.options.delays:
                for way in self.ways:
                    print(f"{fileSet.label}, +{delayMs} ms: {way.name}", flush=True)
                    row = self.runCase(fileSet, delayMs, way)
                    self.rows.append(row)
                    if not row.error:
                        print(f"  {row.seconds:.2f} s, {row.used}", flush=True)
        self.report(loadBefore)
        return 1 if any(row.error for row in self.rows) else 0

    def report(self, loadBefore: float | None) -> None:
        header = (
            "files",
            "rtt",
            "way",
            "way used (transfer)",
            "seconds",
            "MB/s",
            "client CPU s",
            "peak RSS MB (set-up)",
        )
        header += ("peak disk MB", "via client MB", "boto3/this")
        lines = []
        for row in self.rows:
            peer = next(r for r in self.rows if r.fileSet is row.fileSet and r.delayMs == row.delayMs and r.way is PEER)
            if row.error:
                lines.append((row.fileSet.label, f"+{row.delayMs} ms", row.way.name, "FAILED", *("-",) * 7))
                self.notes.append(f"{row.fileSet.label} +{row.delayMs} ms {row.way.name} FAILED: {row.error}")
                continue
            ratio = "-" if peer.error or not row.seconds else f"{peer.seconds / row.seconds:.2f}x"
            lines.append(
                (
                    row.fileSet.label,
                    f"+{row.delayMs} ms",
                    row.way.name,
                    row.used,
                    f"{row.seconds:.2f}",
                    f"{row.fileSet.total / row.seconds / MB:.0f}",
                    f"{row.cpu:.2f}",
                    f"{row.rssPeak:.0f} ({row.rssBefore:.0f})",
                    f"{row.diskPeak / MB:.0f}",
                    f"{row.relayed / MB:.1f}",
                    ratio,
                )
            )
        title = (
            "replication S3-SRC (rclone A) -> S3-SAME, S3-SAME-WHOLE (A) / S3-OTHER (rclone B); "
            "S3RVER-SRC -> S3RVER-SAME (s3rver C); through delaying relays"
        )
        printTable(header, lines, title)
        self.notes.append(
            "boto3/this: the peer's seconds over the row's (above 1: faster than serial boto3 download-then-upload); "
            "client CPU: user + system seconds of the process doing the copy during the timed call (all threads); "
            "peak RSS: VmHWM of the process doing the copy, imports included (in brackets: before the timed call); "
            "peak disk: the case's localCache / TMPDIR / temporary folder, sampled every 10 ms; via client: the bytes "
            "that crossed the relays (client <-> servers, both ways, warm-up included); MB = 10^6 bytes"
        )
        self.notes.append(loadNote(loadBefore, loadAverage()))
        for note in self.notes:
            print(f"note: {note}")


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argumentParser(__doc__.split("\n\n")[0], bigFile=True, quick="smoke run: 64 MiB and 100 x 1 MiB")
    parser.add_argument("--files", type=int, default=None, help="number of small files (default 1000; --quick 100)")
    parser.add_argument("--size-mib", type=int, default=1, help="size of each small file in MiB (default 1)")
    parser.add_argument("--delays", default="0,20", help="added round trips in ms, comma-separated (default 0,20)")
    options = parseOptions(parser, argv, ("files", "size_mib"), files=(100, 1000), big_mib=(64, 1024))
    try:
        options.delays = [int(text) for text in options.delays.split(",") if text.strip()]
    except ValueError:
        parser.error(f"--delays must be whole milliseconds separated by commas, not {options.delays!r}")
    if not options.delays or min(options.delays) < 0 or options.big_mib < 0:
        parser.error("--delays needs at least one round trip, none negative; --big-mib cannot be negative")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    return runInTemporaryFolder("bench-dm-", options, lambda work: ReplicationBenchmark(options, work))


if __name__ == "__main__":
    sys.exit(main())

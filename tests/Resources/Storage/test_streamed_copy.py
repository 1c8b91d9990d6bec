"""``StorageBase.copyStreamed`` between real storages: S3 -> S3 on two servers (moto, rclone),
S3 -> File, File -> S3 and File -> File, with the SEs' keys.

Each copy is checked byte for byte at the destination, with its checksum metadata; the
failures (a source that changed or is corrupt, a plugin without the seams) leave nothing at
the destination: no object, no unfinished multipart upload, no temporary file.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import fileAdler, stringAdler
from DIRAC.Resources.Storage.FileStorage import FileStorage
from DIRAC.Resources.Storage.S3Storage import S3Storage
from DIRAC.Resources.Storage.StorageBase import StorageBase
from DIRAC.Resources.Storage.StreamedCopy import MAX_BUFFERED_OBJECT
from fault_relay import Fault, FaultRelay
from s3_fixtures import corrupt_object

MiB = 1024 * 1024
SMALL = 300 * 1024 + 7
#: above the lowered multipart threshold: three parts of 5 MiB, the last one shorter
BIG = 12 * MiB + 123
LFN = "/vo/copy/f.dat"
SMALL_PARTS = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}


class Stores:
    """The storages of one test: ``s3(server, **options)`` and ``file()`` plugins, and what they hold."""

    def __init__(self, servers: dict, tmp_path):
        self.servers = servers
        self.tmp_path = tmp_path
        self.buckets: dict[str, tuple] = {}

    def s3(self, name: str, port: int | None = None, **options) -> S3Storage:
        server = self.servers[name]
        bucket = server.make_bucket()
        parameters = {
            "Host": server.host,
            "Port": str(port or server.port),
            "Path": bucket,
            "SecureConnection": "False",
            "Aws_access_key_id": server.access_key,
            "Aws_secret_access_key": server.secret_key,
            "PluginName": "S3",
            **{key: str(value) for key, value in options.items()},
        }
        storage = S3Storage(f"S3-{name.upper()}-{bucket}", parameters)
        assert storage.isok, storage.errorMessage
        self.buckets[storage.name] = (server, bucket)
        return storage

    def file(self, name: str = "file") -> FileStorage:
        folder = self.tmp_path / name
        folder.mkdir()
        return FileStorage(f"FILE-{name}", {"Protocol": "file", "Path": str(folder), "Host": "localhost"})

    def store(self, name: str, **options) -> StorageBase:
        """A File storage in a fresh folder for "file", else an S3 storage on that server."""
        return self.file(f"file-{time.monotonic_ns()}") if name == "file" else self.s3(name, **options)

    def objects(self, storage: StorageBase) -> dict[str, bytes]:
        """{LFN: bytes} of everything the storage holds (files beside temporary ones, read directly)."""
        if isinstance(storage, FileStorage):
            found = {}
            for root, _dirs, names in os.walk(storage.baseFolder):
                for name in names:
                    path = os.path.join(root, name)
                    with open(path, "rb") as handle:
                        found["/" + os.path.relpath(path, storage.baseFolder)] = handle.read()
            return found
        server, bucket = self.buckets[storage.name]
        client = server.client()
        keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return {"/" + key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

    def unfinishedUploads(self, storage: StorageBase) -> list:
        if isinstance(storage, FileStorage):
            return []
        server, bucket = self.buckets[storage.name]
        client = server.client()
        try:
            return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        except client.exceptions.NoSuchUpload:
            return []  # rclone's answer when it keeps none


@pytest.fixture
def stores(moto_server, rclone_s3_server, tmp_path) -> Stores:
    return Stores({"moto": moto_server, "rclone": rclone_s3_server}, tmp_path)


def put(storage: StorageBase, tmp_path, data: bytes, lfn: str = LFN) -> dict:
    """Put ``data`` at ``lfn``; the catalog entry it would have: {lfn: {'Size', 'Checksum'}}."""
    local = tmp_path / f"source-{time.monotonic_ns()}"
    local.write_bytes(data)
    url = storage.constructURLFromLFN(lfn)["Value"]
    result = storage.putFile({url: str(local)})
    assert result["OK"] and url in result["Value"]["Successful"], result
    return {lfn: {"Size": len(data), "Checksum": fileAdler(str(local))}}


def storedChecksum(storage: StorageBase, lfn: str = LFN) -> str:
    url = storage.constructURLFromLFN(lfn)["Value"]
    return storage.getFileMetadata(url)["Value"]["Successful"][url]["Checksum"]


def copyMeasuringPeak(destination: StorageBase, source: StorageBase, items: dict, size: int) -> int:
    """Stream ``items`` from ``source`` into ``destination``, assert it copied ``size`` bytes of
    ``LFN``, and return the peak of Python memory (tracemalloc) during the copy."""
    tracemalloc.start()
    try:
        result = destination.copyStreamed(source, items)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == {LFN: {"OK": True, "Value": size}}, result
    return peak


def assertNothingLeft(stores: Stores, destination: StorageBase) -> None:
    assert stores.objects(destination) == {}
    assert stores.unfinishedUploads(destination) == []


PAIRS = [("moto", "rclone"), ("rclone", "moto"), ("rclone", "file"), ("file", "moto"), ("file", "file")]


@pytest.mark.parametrize("size", [0, SMALL, BIG], ids=["empty", "small", "multipart"])
@pytest.mark.parametrize(("sourceName", "destinationName"), PAIRS, ids=["->".join(pair) for pair in PAIRS])
def test_copy_is_byte_exact_with_its_checksum(stores, tmp_path, sourceName, destinationName, size):
    source = stores.store(sourceName, **SMALL_PARTS)
    destination = stores.store(destinationName, **SMALL_PARTS)
    data = os.urandom(size)
    items = put(source, tmp_path, data)
    result = destination.copyStreamed(source, items)
    assert result == {LFN: {"OK": True, "Value": size}}, result
    assert stores.objects(destination) == {LFN: data}
    assert storedChecksum(destination) == items[LFN]["Checksum"] == stringAdler(data)
    assert stores.unfinishedUploads(destination) == []
    assert stores.objects(source) == {LFN: data}, "the source is untouched"


def test_many_files_in_one_call(stores, tmp_path):
    source, destination = stores.s3("rclone"), stores.s3("moto")
    items, data = {}, {}
    for number in range(12):
        lfn = f"/vo/copy/many/f{number}.dat"
        data[lfn] = os.urandom(1000 + number)
        items.update(put(source, tmp_path, data[lfn], lfn))
    result = destination.copyStreamed(source, items)
    assert result == {lfn: {"OK": True, "Value": len(value)} for lfn, value in data.items()}
    assert stores.objects(destination) == data


@pytest.mark.parametrize("sourceName", ["moto", "file"])
def test_memory_is_bounded_by_part_size_times_part_workers(stores, tmp_path, sourceName):
    """Eight parts of 5 MiB with two part workers: the copy holds two parts (and a few 1 MiB
    chunks on their way into them), not the file."""
    size = 40 * MiB
    source = stores.store(sourceName)
    destination = stores.s3("rclone", PartWorkers=2, **SMALL_PARTS)
    items = put(source, tmp_path, os.urandom(size))
    peak = copyMeasuringPeak(destination, source, items, size)
    assert peak < 2 * 5 * MiB + 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB file"
    assert storedChecksum(destination) == items[LFN]["Checksum"]


def test_an_object_too_big_to_buffer_goes_in_parts_below_a_high_threshold(stores, tmp_path):
    """MultipartThreshold 256 MiB: a 64 MiB + 1 byte object is still not held whole in memory."""
    size = MAX_BUFFERED_OBJECT + 1
    source = stores.s3("moto")
    destination = stores.s3("rclone", PartWorkers=2, MultipartThreshold=256 * MiB, MultipartChunkSize=5 * MiB)
    items = put(source, tmp_path, os.urandom(size))
    peak = copyMeasuringPeak(destination, source, items, size)
    assert peak < 2 * 5 * MiB + 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert storedChecksum(destination) == items[LFN]["Checksum"]


def test_memory_of_a_copy_into_a_file_is_bounded_by_a_chunk(stores, tmp_path):
    size = 20 * MiB
    source, destination = stores.s3("moto"), stores.file()
    items = put(source, tmp_path, os.urandom(size))
    peak = copyMeasuringPeak(destination, source, items, size)
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
@pytest.mark.parametrize("destinationName", ["moto", "file"])
@pytest.mark.parametrize("sourceName", ["moto", "rclone"])
def test_corrupt_source_is_caught_and_nothing_is_left(stores, tmp_path, sourceName, destinationName, size):
    """The source's bytes no longer match its checksum (and the catalog's): caught on the way."""
    source = stores.s3(sourceName)
    destination = stores.store(destinationName, **SMALL_PARTS)
    items = put(source, tmp_path, os.urandom(size))
    server, bucket = stores.buckets[source.name]
    corrupt_object(server, bucket, LFN.lstrip("/"), offset=size - 10)
    result = destination.copyStreamed(source, items)[LFN]
    assert not result["OK"] and result["Errno"] == DErrno.EBADCKS, result
    assert "changed during the copy or is corrupt" in result["Message"], result
    assertNothingLeft(stores, destination)


def test_source_overwritten_after_the_first_part_is_refused_by_its_etag(stores, tmp_path, moto_server):
    """moto gives the overwritten object a new ETag: the next range read (If-Match) is refused."""
    with FaultRelay(moto_server.host, moto_server.port) as relay:
        source = stores.s3("moto", port=relay.port)
        destination = stores.s3("rclone", PartWorkers=1, **SMALL_PARTS)
        items = put(source, tmp_path, os.urandom(BIG))
        server, bucket = stores.buckets[source.name]
        # the second range's answer is held 4 s, time enough to replace the object on a loaded machine
        held = relay.add(Fault("stall", method="GET", skip=2, seconds=4, after=0))
        overwrite = threading.Thread(target=_overwriteOnceFired, args=(held, server, bucket, BIG))
        overwrite.start()
        try:
            result = destination.copyStreamed(source, items)[LFN]
        finally:
            overwrite.join()
        assert held.fired == 1
    assert not result["OK"], result
    assert "changed while being downloaded" in result["Message"], result
    assert "the multipart upload was aborted" in result["Message"], result
    assertNothingLeft(stores, destination)


def _overwriteOnceFired(fault: Fault, server, bucket: str, size: int) -> None:
    for _ in range(200):
        if fault.fired:
            server.client().put_object(Bucket=bucket, Key=LFN.lstrip("/"), Body=os.urandom(size))
            return
        time.sleep(0.01)


def test_file_source_changed_during_the_copy_is_caught(stores, tmp_path, rclone_s3_server):
    """A File source written in place after the first part: its pinned modification time changed."""
    source = stores.file()
    with FaultRelay(rclone_s3_server.host, rclone_s3_server.port) as relay:
        destination = stores.s3("rclone", port=relay.port, PartWorkers=1, **SMALL_PARTS)
        items = put(source, tmp_path, os.urandom(BIG))
        held = relay.add(Fault("stall", method="PUT", path="partNumber=1", seconds=2, after=0))
        path = os.path.join(source.baseFolder, LFN.lstrip("/"))
        writer = threading.Thread(target=_rewriteOnceFired, args=(held, path))
        writer.start()
        try:
            result = destination.copyStreamed(source, items)[LFN]
        finally:
            writer.join()
        assert held.fired == 1
    assert not result["OK"], result
    assert "changed while being copied" in result["Message"], result
    assertNothingLeft(stores, destination)


def _rewriteOnceFired(fault: Fault, path: str) -> None:
    for _ in range(200):
        if fault.fired:
            with open(path, "r+b") as handle:
                handle.seek(BIG - 1)
                handle.write(b"\0")
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
            return
        time.sleep(0.01)


def test_size_or_checksum_other_than_the_catalogs_writes_nothing(stores, tmp_path):
    source, destination = stores.s3("moto"), stores.file()
    items = put(source, tmp_path, b"catalog" * 100)
    wrongSize = destination.copyStreamed(source, {LFN: {**items[LFN], "Size": 699}})[LFN]
    assert wrongSize["Errno"] == DErrno.EFILESIZE and "the catalog says 699" in wrongSize["Message"], wrongSize
    wrongSum = destination.copyStreamed(source, {LFN: {**items[LFN], "Checksum": "00000001"}})[LFN]
    assert wrongSum["Errno"] == DErrno.EBADCKS and "the catalog says 00000001" in wrongSum["Message"], wrongSum
    assertNothingLeft(stores, destination)


def test_missing_source_fails_with_the_reason(stores):
    source, destination = stores.s3("rclone"), stores.s3("moto")
    result = destination.copyStreamed(source, {LFN: {"Size": 3, "Checksum": "024d0127"}})[LFN]
    assert not result["OK"] and result["Errno"] == DErrno.ENOENT, result
    assert result["Message"].count(f"{LFN} on SE {source.name}") == 1 and "NoSuchKey" in result["Message"], result
    assertNothingLeft(stores, destination)


def test_a_plugin_without_the_seams_answers_eprotonosupport_before_any_request(stores, tmp_path, moto_server):
    plain = StorageBase("PLAIN", {"Path": "/plain", "Protocol": "plain", "PluginName": "Plain"})
    with FaultRelay(moto_server.host, moto_server.port) as relay:
        source, destination = stores.s3("moto", port=relay.port), stores.file()
        items = put(source, tmp_path, b"x" * 10)
        relay.forget()
        fromPlain = destination.copyStreamed(plain, items)[LFN]
        toPlain = plain.copyStreamed(source, items)[LFN]
        assert relay.requests == [], "nothing is read from a source that cannot be copied"
    notAPlugin = destination.copyStreamed("not a plugin", items)[LFN]
    assert notAPlugin["Errno"] == DErrno.EPROTONOSUPPORT and "str storage cannot be read" in notAPlugin["Message"]
    for result, role in ((fromPlain, "read"), (toPlain, "written")):
        assert not result["OK"] and result["Errno"] == DErrno.EPROTONOSUPPORT, result
        assert f"Plain storage cannot be {role} in a stream" in result["Message"], result
    assertNothingLeft(stores, destination)


def test_a_file_source_that_is_no_regular_file_is_refused_without_blocking(stores):
    """A FIFO under the LFN (made by someone else in the SE's folder): refused, the open does not wait."""
    source, destination = stores.file(), stores.s3("moto")
    path = os.path.join(source.baseFolder, LFN.lstrip("/"))
    os.makedirs(os.path.dirname(path))
    os.mkfifo(path)
    result = destination.copyStreamed(source, {LFN: {"Size": 0, "Checksum": "00000001"}})[LFN]
    assert not result["OK"] and result["Errno"] == DErrno.EISDIR and "is not a file" in result["Message"], result
    assertNothingLeft(stores, destination)


def test_a_multipart_copy_aborts_the_unfinished_upload_an_earlier_run_left(stores, tmp_path):
    source, destination = stores.s3("rclone"), stores.s3("moto", **SMALL_PARTS)
    items = put(source, tmp_path, os.urandom(BIG))
    server, bucket = stores.buckets[destination.name]
    orphan = server.client().create_multipart_upload(Bucket=bucket, Key=LFN.lstrip("/"))["UploadId"]
    result = destination.copyStreamed(source, items)
    assert result == {LFN: {"OK": True, "Value": BIG}}, result
    assert orphan not in [upload["UploadId"] for upload in stores.unfinishedUploads(destination)]
    assert stores.unfinishedUploads(destination) == []


def test_an_object_over_five_tib_is_refused_before_any_write(stores):
    """A sparse File source of 5 TiB + 1 byte: S3 cannot hold it, nothing is read or sent."""
    source, destination = stores.file(), stores.s3("moto")
    path = os.path.join(source.baseFolder, LFN.lstrip("/"))
    os.makedirs(os.path.dirname(path))
    size = 5 * 1024**4 + 1
    with open(path, "wb") as handle:
        handle.truncate(size)
    result = destination.copyStreamed(source, {LFN: {"Size": size, "Checksum": "00000001"}})[LFN]
    assert not result["OK"] and result["Errno"] == DErrno.EFBIG and "over S3's 5 TiB" in result["Message"], result
    assertNothingLeft(stores, destination)

"""Server-side copy between two buckets of one S3 server, with the SE's keys, on moto and rclone.

Each test copies with ``S3Storage.copyServerSide`` from SE ``COPY-SRC`` to SE ``COPY-DST`` (two
buckets of one server; the destination's multipart threshold lowered to 5 MiB so that parts are
tested with small files), then reads the buckets with boto3: the copy holds the source's bytes
and checksum metadata, and every failure leaves nothing at the destination and no open upload.
"""

from __future__ import annotations

import os

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import stringAdler
from DIRAC.Resources.Storage.FileStorage import FileStorage
from DIRAC.Resources.Storage.S3 import ServerSideCopy as serverSideCopy
from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import merge_cfg, s3_se_cfg

MiB = 1024 * 1024
LFN = "/vo/copy/f.dat"
PARTS = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}


@pytest.fixture
def pair(s3_server, dirac_cfg):
    """``(server, source bucket, destination bucket, source plugin, destination plugin)`` on each server."""
    source, destination = s3_server.make_bucket(), s3_server.make_bucket()
    dirac_cfg(
        merge_cfg(
            s3_se_cfg("COPY-SRC", s3_server, source),
            s3_se_cfg("COPY-DST", s3_server, destination, **PARTS),
            s3_se_cfg("COPY-DST-WHOLE", s3_server, destination),
            s3_se_cfg("COPY-SRC-ALIAS", s3_server, source),
            s3_se_cfg("COPY-OTHER-KEY", s3_server, destination, Aws_access_key_id="another-key"),
            s3_se_cfg("COPY-KEYLESS", s3_server, destination, with_keys=False),
        )
    )
    return s3_server, source, destination, _plugin("COPY-SRC"), _plugin("COPY-DST")


def _plugin(name: str):
    se = StorageElement(name)
    assert se.valid, se.errorReason
    return se.storages[0]


def _put(server, bucket: str, lfn: str, data: bytes, checksum: str | None = None) -> dict:
    """Write ``data`` at ``lfn`` with boto3, its adler32 as checksum metadata; the catalog entry."""
    checksum = stringAdler(data) if checksum is None else checksum
    metadata = {"checksum": checksum} if checksum else {}
    server.client().put_object(Bucket=bucket, Key=lfn[1:], Body=data, Metadata=metadata)
    return {"Size": len(data), "Checksum": stringAdler(data)}


def _stored(server, bucket: str, lfn: str) -> bytes | None:
    client = server.client()
    try:
        return client.get_object(Bucket=bucket, Key=lfn[1:])["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def _openUploads(server, bucket: str) -> list:
    """The unfinished multipart uploads of ``bucket`` (rclone answers NoSuchUpload when there is none)."""
    client = server.client()
    try:
        return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except client.exceptions.NoSuchUpload:
        return []


def _nothingLeft(server, bucket: str) -> None:
    """The destination bucket holds no object and no unfinished multipart upload."""
    assert server.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert not _openUploads(server, bucket)


def _failed(result: dict, errno: int, words: str) -> None:
    assert not result["OK"], result
    assert DErrno.cmpError(result, errno), result
    assert words in result["Message"], result["Message"]


# ---------------------------------------------------------------- which pairs can copy


def test_only_two_s3_ses_of_one_service_signed_alike_can_copy(pair, moto_server, rclone_s3_server, tmp_path):
    server, _source, destinationBucket, source, destination = pair
    assert destination.canCopyServerSideFrom(source) and source.canCopyServerSideFrom(destination)
    assert not destination.canCopyServerSideFrom(_plugin("COPY-OTHER-KEY")), "another access key may not read"
    assert not destination.canCopyServerSideFrom(_plugin("COPY-KEYLESS")), "keys and gateway do not mix"
    assert not destination.canCopyServerSideFrom(FileStorage("FILE", {"Path": str(tmp_path), "Protocol": "file"}))
    other = rclone_s3_server if server is moto_server else moto_server
    elsewhere = serverSideCopy.S3Storage(
        "ELSEWHERE",
        {"Host": other.host, "Port": str(other.port), "Path": "b-other", "SecureConnection": "False",
         "Aws_access_key_id": server.access_key, "Aws_secret_access_key": server.secret_key},
    )  # fmt: skip
    assert elsewhere.isok and not destination.canCopyServerSideFrom(elsewhere), "another S3 service"
    refused = destination.copyServerSide(elsewhere, {LFN: {"Size": 1, "Checksum": "00000001"}})
    _failed(refused[LFN], DErrno.EPROTONOSUPPORT, "not two SEs of one S3 service")
    _nothingLeft(server, destinationBucket)


# ---------------------------------------------------------------- copies


def test_a_small_file_is_one_copy_keeping_its_checksum(pair):
    server, sourceBucket, destinationBucket, source, destination = pair
    data = os.urandom(300 * 1024)
    items = {
        LFN: _put(server, sourceBucket, LFN, data),
        "/vo/copy/empty": _put(server, sourceBucket, "/vo/copy/empty", b""),
    }
    result = destination.copyServerSide(source, items)
    assert result == {LFN: {"OK": True, "Value": len(data)}, "/vo/copy/empty": {"OK": True, "Value": 0}}, result
    assert (
        _stored(server, destinationBucket, LFN) == data and _stored(server, destinationBucket, "/vo/copy/empty") == b""
    )
    head = server.client().head_object(Bucket=destinationBucket, Key=LFN[1:])
    assert {k.lower(): v for k, v in head["Metadata"].items()}["checksum"] == stringAdler(data)
    assert _stored(server, sourceBucket, LFN) == data


def test_a_big_file_is_copied_in_parts_on_moto_rclone_says_stream_it(pair):
    server, sourceBucket, destinationBucket, source, destination = pair
    data = os.urandom(11 * MiB)
    items = {LFN: _put(server, sourceBucket, LFN, data)}
    result = destination.copyServerSide(source, items)[LFN]
    if server.name == "rclone":
        _failed(result, DErrno.EPROTONOSUPPORT, "without an ETag")
        assert "the multipart upload was aborted" in result["Message"]
        _nothingLeft(server, destinationBucket)
        return
    assert result == {"OK": True, "Value": len(data)}, result
    assert _stored(server, destinationBucket, LFN) == data
    head = server.client().head_object(Bucket=destinationBucket, Key=LFN[1:])
    assert head["Metadata"]["checksum"] == stringAdler(data) and head["ETag"].endswith('-3"'), head["ETag"]
    assert not _openUploads(server, destinationBucket)


def test_a_source_uploaded_in_parts_is_one_copy_below_the_threshold(pair):
    """Its ETag is not the MD5 of its bytes: the copy is checked by the source's ETag staying the same."""
    server, sourceBucket, destinationBucket, source, _destination = pair
    data = os.urandom(6 * MiB)
    client = server.client()
    upload = client.create_multipart_upload(Bucket=sourceBucket, Key=LFN[1:], Metadata={"checksum": stringAdler(data)})
    parts = []
    for number, start in ((1, 0), (2, 5 * MiB)):
        body = data[start : start + 5 * MiB]
        sent = client.upload_part(
            Bucket=sourceBucket, Key=LFN[1:], UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})
    client.complete_multipart_upload(
        Bucket=sourceBucket, Key=LFN[1:], UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    whole = _plugin("COPY-DST-WHOLE")
    result = whole.copyServerSide(source, {LFN: {"Size": len(data), "Checksum": stringAdler(data)}})
    assert result == {LFN: {"OK": True, "Value": len(data)}}, result
    assert _stored(server, destinationBucket, LFN) == data


# ---------------------------------------------------------------- refusals before anything is copied


def test_a_source_that_is_not_the_catalogs_is_not_copied(pair):
    server, sourceBucket, destinationBucket, source, destination = pair
    data = os.urandom(1000)
    entry = _put(server, sourceBucket, LFN, data)
    _put(server, sourceBucket, "/vo/copy/bare", data, checksum="")
    result = destination.copyServerSide(
        source,
        {
            LFN: {**entry, "Checksum": stringAdler(b"other")},
            "/vo/copy/short": {**entry, "Size": 999},
            "/vo/copy/missing": entry,
            "/vo/copy/bare": entry,
            "/vo/copy/bad-item": {"Size": -1, "Checksum": entry["Checksum"]},
            "/vo/copy/bad-checksum": {"Size": 1000, "Checksum": "xyz"},
            "vo/relative": entry,
        },
    )
    _failed(result[LFN], DErrno.EBADCKS, "the catalog says 1000 bytes and")
    _failed(result["/vo/copy/missing"], DErrno.ENOENT, "nothing copied")
    _failed(result["/vo/copy/bare"], DErrno.EPROTONOSUPPORT, "carries no checksum metadata")
    _failed(result["/vo/copy/bad-item"], DErrno.EINVAL, "Size must be a number of bytes")
    _failed(result["/vo/copy/bad-checksum"], DErrno.EINVAL, "adler32")
    assert not result["vo/relative"]["OK"]
    _nothingLeft(server, destinationBucket)


def test_a_copy_onto_the_same_object_is_refused_and_the_source_kept(pair):
    """Two SE names for one bucket: a failed copy's clean-up would remove the source itself."""
    server, sourceBucket, _destinationBucket, source, _destination = pair
    data = os.urandom(100)
    entry = _put(server, sourceBucket, LFN, data)
    result = _plugin("COPY-SRC-ALIAS").copyServerSide(source, {LFN: entry})[LFN]
    _failed(result, DErrno.EINVAL, "both SEs name the same object")
    assert _stored(server, sourceBucket, LFN) == data


# ---------------------------------------------------------------- a source changed during the copy


def _changeSourceBeforeTheCopy(monkeypatch, destination, server, bucket: str, lfn: str, data: bytes, method: str):
    """Overwrite the source with ``data`` (same size, the old checksum metadata kept: a liar) once its
    copy is asked for: the copy then pins an ETag the source no longer has (moto and rclone do not check it)."""
    authorise = destination.signer.authoriseCopies
    head = server.client().head_object(Bucket=bucket, Key=lfn[1:])
    changed = []

    def changing(s3Method, sourceSE, items):
        if s3Method == method and not changed:
            changed.append(server.client().put_object(Bucket=bucket, Key=lfn[1:], Body=data, Metadata=head["Metadata"]))
        return authorise(s3Method, sourceSE, items)

    monkeypatch.setattr(destination.signer, "authoriseCopies", changing)
    return changed


def test_a_source_changed_after_its_head_is_caught_and_the_copy_removed(pair, monkeypatch):
    server, sourceBucket, destinationBucket, source, destination = pair
    first = os.urandom(4096)
    entry = _put(server, sourceBucket, LFN, first)
    other = bytearray(first)
    other[0] ^= 0xFF
    changed = _changeSourceBeforeTheCopy(
        monkeypatch, destination, server, sourceBucket, LFN, bytes(other), "copy_object"
    )
    result = destination.copyServerSide(source, {LFN: entry})[LFN]
    assert changed
    _failed(result, DErrno.EBADCKS, "the source changed meanwhile")
    assert "the copy was removed" in result["Message"]
    _nothingLeft(server, destinationBucket)


def test_a_source_changed_during_a_copy_in_parts_is_caught_on_moto(moto_server, dirac_cfg, monkeypatch):
    sourceBucket, destinationBucket = moto_server.make_bucket(), moto_server.make_bucket()
    dirac_cfg(
        merge_cfg(
            s3_se_cfg("COPY-SRC", moto_server, sourceBucket),
            s3_se_cfg("COPY-DST", moto_server, destinationBucket, **PARTS),
        )
    )
    source, destination = _plugin("COPY-SRC"), _plugin("COPY-DST")
    data = os.urandom(6 * MiB)
    entry = _put(moto_server, sourceBucket, LFN, data)
    other = bytearray(data)
    other[-1] ^= 0xFF
    changed = _changeSourceBeforeTheCopy(
        monkeypatch, destination, moto_server, sourceBucket, LFN, bytes(other), "upload_part_copy"
    )
    result = destination.copyServerSide(source, {LFN: entry})[LFN]
    assert changed
    _failed(result, DErrno.EBADCKS, "the source changed during the copy")
    assert "the copy was removed" in result["Message"]
    _nothingLeft(moto_server, destinationBucket)


def test_s3rver_copies_whole_files_and_parts(s3rver_server, dirac_cfg):
    """s3rver (SigV4 checked) does CopyObject and UploadPartCopy with our signed headers."""
    sourceBucket, destinationBucket = s3rver_server.make_bucket(), s3rver_server.make_bucket()
    dirac_cfg(
        merge_cfg(
            s3_se_cfg("COPY-SRC", s3rver_server, sourceBucket),
            s3_se_cfg("COPY-DST", s3rver_server, destinationBucket, **PARTS),
        )
    )
    source, destination = _plugin("COPY-SRC"), _plugin("COPY-DST")
    small, big = os.urandom(1000), os.urandom(6 * MiB)
    items = {"/vo/copy/small b.dat": _put(s3rver_server, sourceBucket, "/vo/copy/small b.dat", small)}
    items[LFN] = _put(s3rver_server, sourceBucket, LFN, big)
    result = destination.copyServerSide(source, items)
    assert result == {"/vo/copy/small b.dat": {"OK": True, "Value": 1000}, LFN: {"OK": True, "Value": 6 * MiB}}
    assert _stored(s3rver_server, destinationBucket, "/vo/copy/small b.dat") == small
    assert _stored(s3rver_server, destinationBucket, LFN) == big

"""S3 features against real servers on 127.0.0.1: keys other tools write, multi-object delete,
S3's size limits, streamed PUTs, session tokens and assumed roles (moto's STS), boto3 interop,
and the core round trip on a third server that checks signatures (s3rver)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import tracemalloc

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from DIRAC.Core.Utilities.Adler import fileAdler
from DIRAC.Core.Utilities.Subprocesses import freePort
from DIRAC.Resources.Storage.S3.TransferSettings import MiB, TiB
from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import s3_se_cfg

SMALL_PARTS = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}
#: basenames another tool may write: control characters, URL delimiters, '%', spaces, '+', unicode
ODD_NAMES = ["a?b", "a#b", "100%.dat", "%41", "a b+c=d", "é ü~(1)", "tab\there", "bell\x07", "cr\rx", "del\x7f"]


def _se(dirac_cfg, server, bucket, name: str = "S3-DIRECT", **options) -> StorageElement:
    dirac_cfg(s3_se_cfg(name, server, bucket, **options))
    storage = StorageElement(name)
    assert storage.valid, storage.errorReason
    return storage


def _ok(result: dict) -> dict:
    assert result["OK"], result
    assert not result["Value"]["Failed"], result["Value"]["Failed"]
    return result["Value"]["Successful"]


def _write(path, size: int) -> str:
    path.write_bytes(os.urandom(size))
    return str(path)


def _keys(server, bucket: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=bucket, EncodingType="url").get("Contents", [])
    return sorted(item["Key"] for item in listed)


@pytest.fixture(params=["moto", "rclone", "s3rver"])
def any_bucket(request):
    """A fresh bucket on each of the three servers: ``(server, bucket)``."""
    server = request.getfixturevalue(
        {"moto": "moto_server", "rclone": "rclone_s3_server"}.get(request.param, "s3rver_server")
    )
    return server, server.make_bucket()


def test_storage_element_round_trip(any_bucket, dirac_cfg, tmp_path):
    """The core round trip; rclone and s3rver check every signature, moto and s3rver do DeleteObjects their way."""
    server, bucket = any_bucket
    se = _se(dirac_cfg, server, bucket, **SMALL_PARTS)
    sources = {f"/vo/rt/f{index}.dat": _write(tmp_path / f"f{index}.dat", 1000 + index) for index in range(3)}
    sources["/vo/rt/sub/big.dat"] = _write(tmp_path / "big.dat", 11 * MiB + 3)
    assert _ok(se.putFile(sources)) == {lfn: os.path.getsize(path) for lfn, path in sources.items()}
    metadata = _ok(se.getFileMetadata(list(sources)))
    assert {lfn: meta["Checksum"] for lfn, meta in metadata.items()} == {
        lfn: fileAdler(path) for lfn, path in sources.items()
    }
    listing = _ok(se.listDirectory("/vo/rt"))["/vo/rt"]
    assert sorted(listing["Files"]) == sorted(lfn for lfn in sources if "/sub/" not in lfn)
    assert list(listing["SubDirs"]) == ["/vo/rt/sub"]
    out = tmp_path / "out"
    out.mkdir()
    _ok(se.getFile(list(sources), localPath=str(out)))
    for lfn, path in sources.items():
        assert (out / lfn.rsplit("/", 1)[-1]).read_bytes() == open(path, "rb").read()
    removed = [lfn for lfn in sources if "/sub/" not in lfn]
    assert _ok(se.removeFile([*removed, "/vo/rt/never-there"])) == dict.fromkeys([*removed, "/vo/rt/never-there"], True)
    assert _ok(se.exists(removed)) == dict.fromkeys(removed, False)
    # (s3rver 4.0.4 lists no common prefix of 'vo/' once 'vo/rt/' holds no file of its own: start lower)
    removed = _ok(se.removeDirectory("/vo/rt/sub", recursive=True))
    assert removed == {"/vo/rt/sub": {"FilesRemoved": 1, "SizeRemoved": 11 * MiB + 3}}
    assert _keys(server, bucket) == []


@pytest.mark.parametrize("server_name", ["moto_server", "rclone_s3_server"])
def test_keys_other_tools_write_are_listed_read_and_removed(server_name, request, dirac_cfg, tmp_path):
    """boto3 writes keys with control characters, '?', '#', '%', spaces and unicode: we list, read and remove them."""
    server = request.getfixturevalue(server_name)
    bucket = server.make_bucket()
    client = server.client()
    for index, name in enumerate(ODD_NAMES):
        client.put_object(Bucket=bucket, Key=f"vo/odd/{name}", Body=bytes([index]) * 10)
    se = _se(dirac_cfg, server, bucket)
    lfns = [f"/vo/odd/{name}" for name in ODD_NAMES]
    listing = _ok(se.listDirectory("/vo/odd"))["/vo/odd"]
    assert sorted(listing["Files"]) == sorted(lfns) and "NotLFNs" not in listing
    out = tmp_path / "out"
    out.mkdir()
    assert _ok(se.getFile(lfns, localPath=str(out))) == dict.fromkeys(lfns, 10)
    assert [(out / name).read_bytes() for name in ODD_NAMES] == [bytes([i]) * 10 for i in range(len(ODD_NAMES))]
    urls = _ok(se.getURL(lfns))
    plugin = se.storages[0]
    assert [plugin._urlToLFN(url)["Value"] for url in urls.values()] == lfns
    assert _ok(se.removeDirectory("/vo/odd")) == {"/vo/odd": {"FilesRemoved": len(lfns), "SizeRemoved": 10 * len(lfns)}}
    assert _keys(server, bucket) == []


def test_keys_that_cannot_be_lfns_are_reported_not_mapped(moto_server, dirac_cfg):
    """moto stores 'a//b' and '..' segments (rclone refuses them): they are named, never taken for other LFNs."""
    bucket = moto_server.make_bucket()
    client = moto_server.client()
    for key in ("vo/bad/ok", "vo/bad/a//b", "vo/bad/x/../y"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    se = _se(dirac_cfg, moto_server, bucket)
    inner = _ok(se.listDirectory("/vo/bad/a"))["/vo/bad/a"]
    assert inner["Files"] == {} and inner["SubDirs"] == {} and list(inner["NotLFNs"]) == ["vo/bad/a//"]
    result = se.removeDirectory("/vo/bad", recursive=True)
    message = result["Value"]["Failed"]["/vo/bad"]
    assert "removed 1 of 1 files" in message and "'vo/bad/a//'" in message and "'vo/bad/x/../'" in message
    assert _keys(moto_server, bucket) == ["vo/bad/a//b", "vo/bad/x/../y"]


def test_bulk_remove_maps_each_key(rclone_s3_server, dirac_cfg):
    """1,006 removable keys: eight DeleteObjects requests of at most 126 keys, sent together (seen on the
    wire); a key XML cannot carry is removed alone; a missing one counts as removed."""
    from fault_relay import FaultRelay

    bucket = rclone_s3_server.make_bucket()
    client = rclone_s3_server.client()
    names = [f"f{index:04d}" for index in range(1005)] + ["ctl\x01char"]
    for name in names:
        client.put_object(Bucket=bucket, Key=f"vo/many/{name}", Body=b"")
    lfns = [f"/vo/many/{name}" for name in names] + ["/vo/many/missing"]
    with FaultRelay(rclone_s3_server.host, rclone_s3_server.port) as relay:
        se = _se(dirac_cfg, dataclasses.replace(rclone_s3_server, port=relay.port), bucket)
        assert _ok(se.removeFile(lfns)) == dict.fromkeys(lfns, True)
        sent = [(request.method, request.target.partition("?")[2]) for request in relay.requests]
    assert sorted(sent) == [("DELETE", ""), *[("POST", "delete=")] * 8], sent
    assert _keys(rclone_s3_server, bucket) == []


def test_a_file_over_5_tib_is_refused_before_anything_is_sent(moto_server, dirac_cfg, tmp_path):
    bucket = moto_server.make_bucket()
    se = _se(dirac_cfg, moto_server, bucket)
    sparse = tmp_path / "huge"
    with open(sparse, "wb") as handle:
        handle.truncate(5 * TiB + 1)
    result = se.putFile({"/vo/huge": str(sparse)})
    assert result["OK"] and "at most 5 TiB: nothing was sent" in result["Value"]["Failed"]["/vo/huge"], result
    assert _keys(moto_server, bucket) == []
    assert moto_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_single_put_streams_from_the_file(rclone_s3_server, dirac_cfg, tmp_path):
    """A 24 MiB single PUT is not read whole into memory (the checksum pass holds two 4 MiB chunks)."""
    bucket = rclone_s3_server.make_bucket()
    se = _se(dirac_cfg, rclone_s3_server, bucket, MultipartThreshold=32 * MiB)
    source = _write(tmp_path / "f", 24 * MiB)
    tracemalloc.start()
    try:
        put = se.putFile({"/vo/stream": source})
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _ok(put) == {"/vo/stream": 24 * MiB}
    assert peak < 10 * MiB, f"peak {peak} bytes"
    assert _ok(se.getFileMetadata("/vo/stream"))["/vo/stream"]["Checksum"] == fileAdler(source)


def test_session_token_from_sts(moto_server, dirac_cfg, tmp_path):
    """Temporary keys with Aws_session_token: every request carries x-amz-security-token."""
    temporary = boto3.client(
        "sts",
        endpoint_url=moto_server.endpoint_url,
        region_name=moto_server.region,
        aws_access_key_id=moto_server.access_key,
        aws_secret_access_key=moto_server.secret_key,
    ).get_session_token(DurationSeconds=900)["Credentials"]
    bucket = moto_server.make_bucket()
    dirac_cfg(
        s3_se_cfg(
            "S3-TOKEN",
            moto_server,
            bucket,
            Aws_access_key_id=temporary["AccessKeyId"],
            Aws_secret_access_key=temporary["SecretAccessKey"],
            Aws_session_token=temporary["SessionToken"],
        )
    )
    se = StorageElement("S3-TOKEN")
    assert _ok(se.putFile({"/vo/t": _write(tmp_path / "t", 100)})) == {"/vo/t": 100}
    _url, headers = se.storages[0].signer.sign("GET", "vo/t")["Value"]
    assert headers["X-Amz-Security-Token"] == temporary["SessionToken"]
    assert temporary["SessionToken"] not in str(se.getStorageParameters("S3"))


def test_assumed_role_is_used_and_refreshed_before_expiry(moto_server, dirac_cfg, tmp_path):
    bucket = moto_server.make_bucket()
    se = _se(
        dirac_cfg,
        moto_server,
        bucket,
        name="S3-ROLE",
        Aws_role_arn="arn:aws:iam::123456789012:role/dirac-storage",
        Aws_role_duration=900,
        StsEndpoint=moto_server.endpoint_url,
    )
    assert _ok(se.putFile({"/vo/r1": _write(tmp_path / "r1", 10)})) == {"/vo/r1": 10}
    credentials = se.storages[0].signer._credentials
    first = credentials.frozen()["Value"]
    assert first.access_key != moto_server.access_key and first.token
    _url, headers = se.storages[0].signer.sign("GET", "vo/r1")["Value"]
    assert headers["X-Amz-Security-Token"] == first.token and first.access_key in headers["Authorization"]
    assert credentials.frozen()["Value"] == first  # not refreshed while far from expiry
    refreshable = credentials._refreshable
    soon = refreshable._expiry_time - datetime.timedelta(seconds=60)
    refreshable._time_fetcher = lambda: soon  # the clock moved: one minute before the keys expire
    second = credentials.frozen()["Value"]
    assert second.access_key != first.access_key and second.token != first.token
    assert _ok(se.putFile({"/vo/r2": _write(tmp_path / "r2", 20)})) == {"/vo/r2": 20}


def test_unreachable_sts_is_a_clear_failure(moto_server, dirac_cfg, tmp_path):
    bucket = moto_server.make_bucket()
    se = _se(
        dirac_cfg,
        moto_server,
        bucket,
        name="S3-NOSTS",
        Aws_role_arn="arn:aws:iam::123456789012:role/r",
        StsEndpoint=f"http://127.0.0.1:{freePort()}",
        ConnectTimeout=1,
    )
    sources = {f"/vo/x{index}": _write(tmp_path / f"x{index}", 10) for index in range(3)}
    result = se.putFile(sources)
    for lfn in sources:
        message = result["Value"]["Failed"][lfn]
        assert "SE S3-NOSTS: cannot assume role arn:aws:iam::123456789012:role/r" in message, message
    credentials = se.storages[0].signer._credentials
    assert credentials.frozen() is credentials.frozen()  # the failure is kept a while: STS is not asked per file
    assert _keys(moto_server, bucket) == []


def test_we_read_what_boto3_writes(rclone_s3_server, dirac_cfg, tmp_path):
    """boto3's multipart upload (no checksum of ours) and a put with our checksum metadata, under odd keys."""
    bucket = rclone_s3_server.make_bucket()
    client = rclone_s3_server.client()
    big = _write(tmp_path / "big", 11 * MiB + 1)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    client.upload_file(big, bucket, "vo/interop/multi part?#.dat", Config=config)
    small = _write(tmp_path / "small", 5000)
    client.put_object(
        Bucket=bucket, Key="vo/interop/100%.dat", Body=open(small, "rb").read(), Metadata={"checksum": fileAdler(small)}
    )
    se = _se(dirac_cfg, rclone_s3_server, bucket, **SMALL_PARTS)
    multi, odd = "/vo/interop/multi part?#.dat", "/vo/interop/100%.dat"
    metadata = _ok(se.getFileMetadata([multi, odd]))
    assert (metadata[multi]["Size"], metadata[multi]["ChecksumType"]) == (11 * MiB + 1, "")
    assert (metadata[odd]["Checksum"], metadata[odd]["ChecksumType"]) == (fileAdler(small), "ADLER32")
    out = tmp_path / "out"
    out.mkdir()
    assert _ok(se.getFile([multi, odd], localPath=str(out))) == {multi: 11 * MiB + 1, odd: 5000}
    assert (out / "multi part?#.dat").read_bytes() == open(big, "rb").read()


def test_boto3_reads_what_we_write(rclone_s3_server, dirac_cfg, tmp_path):
    bucket = rclone_s3_server.make_bucket()
    se = _se(dirac_cfg, rclone_s3_server, bucket, **SMALL_PARTS)
    sources = {
        "/vo/ours/single é.dat": _write(tmp_path / "s", 3000),
        "/vo/ours/multi?.dat": _write(tmp_path / "m", 12 * MiB),
    }
    _ok(se.putFile(sources))
    client = rclone_s3_server.client()
    for lfn, path in sources.items():
        key = lfn.lstrip("/")
        target = tmp_path / "copy"
        client.download_file(bucket, key, str(target))
        assert target.read_bytes() == open(path, "rb").read()
        metadata = {
            name.lower(): value for name, value in client.head_object(Bucket=bucket, Key=key)["Metadata"].items()
        }
        assert metadata["checksum"] == fileAdler(path)


def test_remove_directory_fails_when_its_listing_cannot_be_read(rclone_s3_server, dirac_cfg):
    """A 200 whose body is an ``<Error>`` instead of the listing: Failed with the reason, nothing removed."""
    from fault_relay import Fault, FaultRelay

    bucket = rclone_s3_server.make_bucket()
    client = rclone_s3_server.client()
    for name in ("a", "b"):
        client.put_object(Bucket=bucket, Key=f"vo/unread/{name}", Body=b"x")
    with FaultRelay(rclone_s3_server.host, rclone_s3_server.port) as relay:
        se = _se(dirac_cfg, dataclasses.replace(rclone_s3_server, port=relay.port), bucket)
        fault = relay.add(Fault.errorIn200(method="GET", path=r"list-type=2", times=20))
        result = se.removeDirectory("/vo/unread", recursive=True)
        assert fault.fired >= 1
    message = result["Value"]["Failed"]["/vo/unread"]
    assert "cannot list /vo/unread" in message and "InternalError" in message, message
    assert _keys(rclone_s3_server, bucket) == ["vo/unread/a", "vo/unread/b"]


def test_s3rver_checks_signatures_and_knows_only_our_keys(s3rver_server):
    """Otherwise its round trip would prove nothing: a wrong secret, and s3rver's built-in pair, are refused."""
    from botocore.exceptions import ClientError

    bucket = s3rver_server.make_bucket()
    for access, secret in ((s3rver_server.access_key, "wrong-secret"), ("S3RVER", "S3RVER")):
        with pytest.raises(ClientError) as refused:
            s3rver_server.client(access_key=access, secret_key=secret).list_objects_v2(Bucket=bucket)
        assert refused.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "InvalidAccessKeyId")


def test_without_node_s3rver_is_skipped_with_the_reason(monkeypatch):
    from s3_fixtures import s3rver_missing

    monkeypatch.setenv("PATH", "/nonexistent")
    assert "node is not installed" in s3rver_missing() and "npm ci" in s3rver_missing()

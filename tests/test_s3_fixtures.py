"""Guards for the S3 server fixtures (tests/s3_fixtures.py): both servers really serve S3."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError
from diraccfg import CFG

from s3_fixtures import (
    _rclone_command,
    corrupt_object,
    file_se_cfg,
    merge_cfg,
    s3_se_cfg,
    start_server,
    stop_process,
)


def _metadata(head: dict) -> dict:
    """User metadata with lower-cased keys (rclone Title-Cases them)."""
    return {key.lower(): value for key, value in head.get("Metadata", {}).items()}


def test_server_answers(s3_server):
    assert s3_server.process.poll() is None
    assert s3_server.pid == s3_server.process.pid
    assert s3_server.endpoint_url == f"http://127.0.0.1:{s3_server.port}"
    s3_server.client().list_buckets()


def test_bucket_is_fresh_and_round_trips(s3_bucket):
    server, bucket = s3_bucket
    client = server.client()
    client.head_bucket(Bucket=bucket)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    payload = os.urandom(10_000)
    client.put_object(Bucket=bucket, Key="vo/user/f.dat", Body=payload, Metadata={"checksum": "0a1b2c3d"})
    assert client.get_object(Bucket=bucket, Key="vo/user/f.dat")["Body"].read() == payload
    head = client.head_object(Bucket=bucket, Key="vo/user/f.dat")
    assert head["ContentLength"] == len(payload)
    assert _metadata(head) == {"checksum": "0a1b2c3d"}


def test_buckets_differ_between_tests(s3_bucket):
    server, bucket = s3_bucket
    assert bucket == server._buckets[-1]
    assert len(set(server._buckets)) == len(server._buckets)


def test_rclone_keeps_objects_in_root(rclone_s3_server):
    bucket = rclone_s3_server.make_bucket()
    rclone_s3_server.client().put_object(Bucket=bucket, Key="a/b.txt", Body=b"on disk")
    assert rclone_s3_server.object_path(bucket, "a/b.txt").read_bytes() == b"on disk"


def test_rclone_sees_files_placed_in_root_after_forget_cache(rclone_s3_server):
    bucket = rclone_s3_server.make_bucket()
    client = rclone_s3_server.client()
    client.put_object(Bucket=bucket, Key="d/first", Body=b"1")
    rclone_s3_server.object_path(bucket, "d/by-hand").write_bytes(b"placed by hand")
    rclone_s3_server.forget_cache()
    assert client.get_object(Bucket=bucket, Key="d/by-hand")["Body"].read() == b"placed by hand"


def test_rclone_refuses_a_bad_signature(rclone_s3_server):
    bucket = rclone_s3_server.make_bucket()
    bad = rclone_s3_server.client(secret_key="not-the-secret")
    with pytest.raises(ClientError) as error:
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not rclone_s3_server.object_path(bucket, "x").exists()


def test_corrupt_object_keeps_size_and_metadata(s3_bucket):
    server, bucket = s3_bucket
    # Without CRC validation by boto3: the caller's own checksum must be what catches the change.
    client = server.client(response_checksum_validation="when_required")
    client.put_object(Bucket=bucket, Key="c.dat", Body=b"0123456789", Metadata={"checksum": "cafe"})
    corrupt_object(server, bucket, "c.dat", offset=3)
    body = client.get_object(Bucket=bucket, Key="c.dat")["Body"].read()
    assert len(body) == 10 and body != b"0123456789" and body[:3] == b"012"
    assert _metadata(client.head_object(Bucket=bucket, Key="c.dat")) == {"checksum": "cafe"}


def test_stop_process_stops_by_pid(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    process, port = start_server(lambda p: _rclone_command(p, root, "stop-access", "stop-secret"), tmp_path / "log")
    assert process.poll() is None
    stop_process(process)
    assert process.poll() is not None
    stop_process(process)  # stopping twice is harmless


def test_se_cfg_texts(moto_server, tmp_path):
    text = merge_cfg(s3_se_cfg("S3-A", moto_server, "bucket-a", Region="eu-west-1"), file_se_cfg("FILE-A", tmp_path))
    cfg = CFG().loadFromBuffer(text)
    s3 = cfg.getAsDict("Resources/StorageElements/S3-A/S3")
    assert s3["Port"] == str(moto_server.port) and s3["Path"] == "bucket-a" and s3["Region"] == "eu-west-1"
    assert s3["Aws_secret_access_key"] == moto_server.secret_key
    assert cfg.getAsDict("Resources/StorageElements/FILE-A/File")["Path"] == str(tmp_path)
    keyless = CFG().loadFromBuffer(s3_se_cfg("S3-B", moto_server, "b", with_keys=False, Port=None))
    options = keyless.getAsDict("Resources/StorageElements/S3-B/S3")
    assert "Aws_access_key_id" not in options and "Port" not in options


def test_dirac_cfg_loads_into_gconfig(dirac_cfg, rclone_s3_server, tmp_path):
    from DIRAC import gConfig

    path = dirac_cfg([s3_se_cfg("S3-X", rclone_s3_server, "bx"), file_se_cfg("FILE-X", tmp_path / "se")])
    assert os.environ["DIRACSYSCONFIG"] == str(path)
    assert gConfig.getValue("/Resources/StorageElements/S3-X/S3/Port", 0) == rclone_s3_server.port
    assert gConfig.getValue("/Resources/StorageElements/S3-X/S3/SecureConnection", True) is False
    assert gConfig.getValue("/Resources/StorageElements/FILE-X/File/Protocol", "") == "file"

"""Network faults on server-side copies (``tests/fault_relay.py`` between the SEs and moto or rclone).

Both SEs reach the server through one relay (a copy needs one S3 service). Each test injects one
fault on a copy request, checks that it fired, what the caller got, and that the destination
then holds either the verified copy (the result says so) or nothing, with no open multipart upload.
"""

from __future__ import annotations

import os

import pytest

from DIRAC.Core.Utilities.Adler import stringAdler
from DIRAC.Resources.Storage.StorageElement import StorageElement
from fault_relay import Fault, FaultRelay
from s3_fixtures import merge_cfg, s3_se_cfg

MiB = 1024 * 1024
LFN = "/vo/copy-faults/f.dat"
PARTS = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}


@pytest.fixture
def relay(s3_server):
    """``(relay, server, source bucket, destination bucket)`` on each server in turn."""
    with FaultRelay(s3_server.host, s3_server.port) as running:
        yield running, s3_server, s3_server.make_bucket(), s3_server.make_bucket()


def _pair(dirac_cfg, relay: FaultRelay, server, source: str, destination: str, retries: int):
    """The source and destination plugins, both through ``relay``."""
    options = {"Port": relay.port, "Retries": retries, **PARTS}
    dirac_cfg(
        merge_cfg(
            s3_se_cfg("FAULT-SRC", server, source, **options), s3_se_cfg("FAULT-DST", server, destination, **options)
        )
    )
    return StorageElement("FAULT-SRC").storages[0], StorageElement("FAULT-DST").storages[0]


def _source(server, bucket: str, size: int) -> tuple[bytes, dict]:
    data = os.urandom(size)
    server.client().put_object(Bucket=bucket, Key=LFN[1:], Body=data, Metadata={"checksum": stringAdler(data)})
    return data, {LFN: {"Size": size, "Checksum": stringAdler(data)}}


def _held(server, bucket: str) -> tuple[bytes | None, list]:
    """(the destination's bytes or None, its unfinished uploads)."""
    client = server.client()
    try:
        data = client.get_object(Bucket=bucket, Key=LFN[1:])["Body"].read()
    except client.exceptions.NoSuchKey:
        data = None
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except client.exceptions.NoSuchUpload:  # rclone keeps no list
        uploads = []
    return data, uploads


def _copies(relay: FaultRelay, bucket: str) -> list:
    return [r for r in relay.requests if r.method == "PUT" and r.target.startswith(f"/{bucket}/")]


@pytest.mark.parametrize(
    "serverName,forward",
    [("moto", False), ("rclone", False), ("rclone", True)],
    ids=["moto", "rclone", "rclone-applied"],
)
def test_a_copy_answered_with_a_server_error_leaves_the_verified_copy_or_nothing(
    request, dirac_cfg, serverName, forward
):
    """A 500 may come before or after the server applied the copy: the destination is checked.
    (Applied: rclone only; the relay replaces moto's ``Connection: close`` answer only at the read timeout.)"""
    server = request.getfixturevalue("moto_server" if serverName == "moto" else "rclone_s3_server")
    with FaultRelay(server.host, server.port) as relay:
        _serverError(relay, server, server.make_bucket(), server.make_bucket(), dirac_cfg, forward)


def _serverError(
    relay: FaultRelay, server, sourceBucket: str, destinationBucket: str, dirac_cfg, forward: bool
) -> None:
    source, destination = _pair(dirac_cfg, relay, server, sourceBucket, destinationBucket, retries=0)
    data, items = _source(server, sourceBucket, 100 * 1024)
    fault = relay.add(Fault("answer", status=500, s3Code="InternalError", method="PUT", forward=forward))
    result = destination.copyServerSide(source, items)[LFN]
    assert fault.fired == 1 and len(_copies(relay, destinationBucket)) == 1
    if forward:
        assert result == {"OK": True, "Value": len(data)}, result
        assert _held(server, destinationBucket) == (data, [])
    else:
        assert not result["OK"] and "InternalError" in result["Message"], result
        assert "nothing is at the destination" in result["Message"]
        assert _held(server, destinationBucket) == (None, [])


@pytest.mark.parametrize("retries", [0, 2])
def test_a_throttled_copy_is_sent_again_or_leaves_nothing(relay, dirac_cfg, retries):
    relay, server, sourceBucket, destinationBucket = relay
    source, destination = _pair(dirac_cfg, relay, server, sourceBucket, destinationBucket, retries=retries)
    data, items = _source(server, sourceBucket, 1000)
    fault = relay.add(Fault.slowDown(method="PUT"))
    result = destination.copyServerSide(source, items)[LFN]
    assert fault.fired == 1 and len(_copies(relay, destinationBucket)) == (2 if retries else 1)
    if retries:
        assert result == {"OK": True, "Value": 1000}, result
        assert _held(server, destinationBucket) == (data, [])
    else:
        assert not result["OK"] and "SlowDown (HTTP 503)" in result["Message"], result
        assert "nothing is at the destination" in result["Message"]
        assert _held(server, destinationBucket) == (None, [])


@pytest.mark.parametrize("kind", ["reset", "lose"])
def test_a_copy_whose_answer_is_lost_is_checked_at_the_destination(relay, dirac_cfg, kind):
    """The server copied, the answer never came (reset or lost), nothing is resent: the copy is verified."""
    relay, server, sourceBucket, destinationBucket = relay
    source, destination = _pair(dirac_cfg, relay, server, sourceBucket, destinationBucket, retries=0)
    data, items = _source(server, sourceBucket, 2000)
    fault = relay.add(Fault(kind, method="PUT"))
    assert destination.copyServerSide(source, items) == {LFN: {"OK": True, "Value": 2000}}
    # a kept-alive connection closed without an answer ("lose") is retried once for free (harmless here);
    # moto closes every connection after its answer, so there its copy went out on a new one
    resent = kind == "lose" and server.name == "rclone"
    assert fault.fired == 1 and len(_copies(relay, destinationBucket)) == (2 if resent else 1)
    assert _held(server, destinationBucket) == (data, [])


def test_a_lost_copy_of_a_changed_source_is_removed(relay, dirac_cfg, monkeypatch):
    """The answer is lost and the source changed meanwhile: the copy is not the pinned source, it goes."""
    relay, server, sourceBucket, destinationBucket = relay
    source, destination = _pair(dirac_cfg, relay, server, sourceBucket, destinationBucket, retries=0)
    data, items = _source(server, sourceBucket, 2000)
    authorise = destination.signer.authoriseCopies

    def changing(s3Method, sourceSE, asked):
        server.client().put_object(
            Bucket=sourceBucket, Key=LFN[1:], Body=data[::-1], Metadata={"checksum": stringAdler(data)}
        )
        return authorise(s3Method, sourceSE, asked)

    monkeypatch.setattr(destination.signer, "authoriseCopies", changing)
    fault = relay.add(Fault("lose", method="PUT"))
    result = destination.copyServerSide(source, items)[LFN]
    assert fault.fired == 1
    assert not result["OK"] and "the source changed meanwhile; the copy was removed" in result["Message"], result
    assert _held(server, destinationBucket) == (None, [])


def test_a_failed_part_copy_aborts_the_upload_on_moto(moto_server, dirac_cfg):
    with FaultRelay(moto_server.host, moto_server.port) as relay:
        sourceBucket, destinationBucket = moto_server.make_bucket(), moto_server.make_bucket()
        source, destination = _pair(dirac_cfg, relay, moto_server, sourceBucket, destinationBucket, retries=0)
        _data, items = _source(moto_server, sourceBucket, 11 * MiB)
        fault = relay.add(Fault("reset", method="PUT", path=r"partNumber=2"))
        result = destination.copyServerSide(source, items)[LFN]
        assert fault.fired == 1
        assert not result["OK"] and "the multipart upload was aborted" in result["Message"], result
        assert _held(moto_server, destinationBucket) == (None, [])


@pytest.mark.parametrize("fault", ["refused", "lost"])
def test_a_failed_completion_leaves_the_verified_copy_or_nothing_on_moto(moto_server, dirac_cfg, fault):
    with FaultRelay(moto_server.host, moto_server.port) as relay:
        sourceBucket, destinationBucket = moto_server.make_bucket(), moto_server.make_bucket()
        source, destination = _pair(dirac_cfg, relay, moto_server, sourceBucket, destinationBucket, retries=0)
        data, items = _source(moto_server, sourceBucket, 6 * MiB)
        injected = relay.add(
            Fault("lose", method="POST", path=r"uploadId=")
            if fault == "lost"
            else Fault("answer", status=500, s3Code="InternalError", method="POST", path=r"uploadId=")
        )
        result = destination.copyServerSide(source, items)[LFN]
        assert injected.fired == 1
        if fault == "lost":
            assert result == {"OK": True, "Value": len(data)}, result
            assert _held(moto_server, destinationBucket) == (data, [])
        else:
            assert not result["OK"] and "nothing is at the destination" in result["Message"], result
            assert _held(moto_server, destinationBucket) == (None, [])

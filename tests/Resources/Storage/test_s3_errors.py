"""Unit tests of the S3 error table and of the transport's pure rules (no server needed)."""

from __future__ import annotations

import io
from email.utils import formatdate
from types import SimpleNamespace

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Resources.Storage.S3.Errors import ERRORS, RETRYABLE_CODES, clockSkew, parseError, s3Error
from DIRAC.Resources.Storage.S3.HttpClient import _proxyFor, isRewindable

SETTINGS = SimpleNamespace(seName="S3-SE", bucket="mybucket", endpoint="https://s3.example:443", region="eu-west-1")


def _error(code: str, message: str = "words") -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    return f"{head}<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


def test_parse_error_document():
    assert parseError(_error("SlowDown", "Please reduce")) == ("SlowDown", "Please reduce")
    assert parseError(b"") == ("", "")
    assert parseError(b"<ListBucketResult><Code>x</Code></ListBucketResult>") == ("", "")
    assert parseError(b"<Error><Code>broken") == ("", "")
    assert parseError(b"not xml") == ("", "")


def test_retryable_codes_are_the_transient_ones():
    assert {"SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable"} <= RETRYABLE_CODES
    assert not {"AccessDenied", "SignatureDoesNotMatch", "NoSuchBucket", "BadDigest", "PreconditionFailed"} & (
        RETRYABLE_CODES
    )


@pytest.mark.parametrize(
    "status, code, errno, words",
    [
        (403, "SignatureDoesNotMatch", DErrno.EACCES, ["Aws_secret_access_key of SE S3-SE", "Region (eu-west-1)"]),
        (403, "InvalidAccessKeyId", DErrno.EACCES, ["Aws_access_key_id"]),
        (403, "AccessDenied", DErrno.EACCES, ["bucket policy"]),
        (404, "NoSuchBucket", DErrno.ECONF, ["bucket mybucket does not exist", "Path option"]),
        (404, "NoSuchKey", DErrno.ENOENT, ["no such file"]),
        (404, "", DErrno.ENOENT, ["no such file", "[NoSuchKey (HTTP 404)]"]),
        (400, "BadDigest", DErrno.EBADCKS, ["Content-MD5"]),
        (412, "PreconditionFailed", DErrno.EEXIST, ["exists already"]),
        (400, "EntityTooLarge", DErrno.EFBIG, ["MultipartChunkSize"]),
        (503, "SlowDown", DErrno.EIO, ["slow down", "MaxWorkers"]),
        (200, "InternalError", DErrno.EIO, ["[InternalError (HTTP 200)]"]),
        (418, "Teapot", DErrno.EIO, ["Teapot (HTTP 418): words"]),
    ],
)
def test_messages_say_what_to_do(status, code, errno, words):
    result = s3Error(status, code, "words", "", SETTINGS, "upload", "/vo/f on SE S3-SE")
    assert not result["OK"] and result["Errno"] == errno
    assert "cannot upload /vo/f on SE S3-SE: " in result["Message"]
    for word in words:
        assert word in result["Message"], result["Message"]


def test_a_bare_403_names_keys_and_clock():
    message = s3Error(403, "", "", "", SETTINGS, "check", "x")["Message"]
    assert "Aws_access_key_id" in message and "clock" in message


def test_clock_skew_from_the_server_date():
    serverDate = formatdate(1_000_000, usegmt=True)
    assert clockSkew(serverDate, now=1_000_000 + 16 * 60 + 5) == "is 16 min 5 s ahead of the S3 server's"
    assert clockSkew(serverDate, now=1_000_000 - 3) == "is 0 min 3 s behind the S3 server's"
    assert "no readable Date" in clockSkew("")
    message = s3Error(403, "RequestTimeTooSkewed", "", formatdate(usegmt=True), SETTINGS, "put", "x")["Message"]
    assert "this host's clock is 0 min" in message and "NTP" in message


def test_every_advice_formats():
    for code, kind in ERRORS.items():
        assert kind.advice.format(se="s", bucket="b", endpoint="e", region="r", skew="k"), code


def test_which_bodies_can_be_sent_again():
    assert isRewindable(None) and isRewindable(b"x") and isRewindable(io.BytesIO(b"x"))
    assert not isRewindable(iter([b"x"])) and not isRewindable(chunk for chunk in [b"x"])


def test_proxy_from_the_environment(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _proxyFor("http", "s3.example:80") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal")
    assert _proxyFor("http", "s3.example:80") == "http://proxy.example:3128"
    assert _proxyFor("https", "s3.example:443") is None
    assert _proxyFor("http", "store.internal:9000") is None
    assert _proxyFor("http", "localhost:9000") is None

"""Unit tests of the pure request-building logic behind the S3 gateway (no server, no network).

What a URL may be signed for is decided by ``S3/Methods.buildRequest``; these tests pin its
refusals (bucket-level requests, smuggled parameters, unbound puts), the headers a put carries,
the DIRAC 9 POST policy, safe local names for ``getDirectory``, and secrets kept out of ``repr``.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from DIRAC.Core.Utilities.Adler import Adler32MD5, fileAdlerMD5, stringAdler
from DIRAC.Resources.Storage.S3.Credentials import signingCredentials
from DIRAC.Resources.Storage.S3.Methods import OPERATIONS, WRITE_URL_SECONDS, buildRequest, bytesContentMD5
from DIRAC.Resources.Storage.S3.PresignedPost import presignPost
from DIRAC.Resources.Storage.S3.Settings import parseS3Settings
from DIRAC.Resources.Storage.S3.Signers import DirectSigner
from DIRAC.Resources.Storage.S3Storage import PREPARED_URL_SECONDS, _isPrepared
from DIRAC.Resources.Storage.Utilities import localTarget

SECRET = "s3cr3t-never-shown-0123456789"
DATA = b"the bytes of the file"
DATA_MD5 = bytesContentMD5(DATA)
PUT = {"Checksum": stringAdler(DATA), "Size": len(DATA), "ContentMD5": DATA_MD5}


def _settings(**extra):
    options = {
        "Host": "s3.example.org",
        "Port": "9000",
        "Path": "bucket",
        "Aws_access_key_id": "AKID",
        "Aws_secret_access_key": SECRET,
        **extra,
    }
    return parseS3Settings("SE", options)["Value"]


def _refused(result: dict, reason: str) -> None:
    assert not result["OK"], result
    assert reason in result["Message"], result["Message"]


# ---------------------------------------------------------------- point 1: what may be signed


@pytest.mark.parametrize("method", ["get_object", "head_object", "delete_object", "put_object", "upload_part"])
@pytest.mark.parametrize("key", ["", "dir/", "a//b", "a/./b", "a/../b", "a/b\nOK", "a/\x00b"])
def test_object_operations_need_one_object(method, key):
    params = {**PUT, "UploadId": "u", "PartNumber": 1} if method == "upload_part" else PUT
    params = params if OPERATIONS[method].bindsBytes else {}
    if method == "upload_part":
        params = {key: value for key, value in params.items() if key != "Checksum"}
    result = buildRequest(method, key, params, viaGateway=True)
    assert not result["OK"], result
    assert method in result["Message"]


@pytest.mark.parametrize(
    "method,params,reason",
    [
        ("get_object", {"acl": ""}, "get_object takes no parameters; not acl"),
        ("get_object", {"versionId": "1"}, "not versionId"),
        ("head_object", {"policy": ""}, "not policy"),
        ("delete_object", {"versions": ""}, "not versions"),
        ("put_object", {**PUT, "uploads": ""}, "not uploads"),
        ("put_object", {**PUT, "x-amz-acl": "public-read"}, "not x-amz-acl"),
        ("list_objects", {"Prefix": "other/"}, "not Prefix"),
        ("list_objects", {"delimiter": ""}, "not delimiter"),
        ("list_objects", {"MaxKeys": 100000}, "MaxKeys must be 1..1000"),
        ("list_objects", {"MaxKeys": "10"}, "MaxKeys must be 1..1000"),
        ("list_objects", {"MaxKeys": True}, "MaxKeys must be 1..1000"),
        ("list_objects", {"ContinuationToken": ["x"]}, "ContinuationToken"),
        (
            "upload_part",
            {"UploadId": "u", "PartNumber": True, "Size": 1, "ContentMD5": PUT["ContentMD5"]},
            "PartNumber",
        ),
        ("get_object", "not-a-dict", "parameters must be a dict"),
    ],
)
def test_smuggled_parameters_are_refused(method, params, reason):
    key = "vo/dir/" if method == "list_objects" else "vo/f"
    _refused(buildRequest(method, key, params, viaGateway=True), reason)


def test_a_listing_has_the_fixed_delimiter_and_a_directory_prefix():
    built = buildRequest("list_objects", "vo/dir/", {"MaxKeys": 5, "ContinuationToken": "t&x=1"}, viaGateway=True)
    method, key, query, headers = built["Value"]
    assert (method, key, headers) == ("GET", None, {})
    assert query == {
        "delimiter": "/",
        "encoding-type": "url",
        "list-type": "2",
        "prefix": "vo/dir/",
        "max-keys": "5",
        "continuation-token": "t&x=1",
    }
    _refused(buildRequest("list_objects", "vo/dir", {}, viaGateway=True), "directory prefix ending with '/'")
    _refused(buildRequest("list_objects", "vo//", {}, viaGateway=True), "empty")
    assert buildRequest("list_objects", "", {}, viaGateway=True)["Value"][2]["max-keys"] == "1000"


# ---------------------------------------------------------------- points 2 and 3: a put binds its bytes


def test_a_put_through_the_gateway_pins_size_md5_checksum_and_no_overwrite():
    method, key, query, headers = buildRequest("put_object", "vo/f", PUT, viaGateway=True)["Value"]
    assert (method, key, query) == ("PUT", "vo/f", {})
    assert headers == {
        "x-amz-meta-checksum": PUT["Checksum"],
        "Content-Length": str(len(DATA)),
        "Content-MD5": PUT["ContentMD5"],
        "If-None-Match": "*",
    }
    complete = buildRequest("complete_multipart_upload", "vo/f", {"UploadId": "u"}, viaGateway=True)["Value"]
    assert complete[3] == {"If-None-Match": "*"}
    part = buildRequest(
        "upload_part", "vo/f", {"UploadId": "u", "PartNumber": 2, "Size": 3, "ContentMD5": PUT["ContentMD5"]}, True
    )["Value"]
    assert part[2] == {"uploadId": "u", "partNumber": "2"} and part[3]["Content-MD5"] == PUT["ContentMD5"]


@pytest.mark.parametrize("missing", ["Size", "ContentMD5"])
@pytest.mark.parametrize("method", ["put_object", "upload_part"])
def test_a_write_without_size_or_md5_is_refused_through_the_gateway(method, missing):
    params = {**PUT, "UploadId": "u", "PartNumber": 1} if method == "upload_part" else dict(PUT)
    params.pop("Checksum") if method == "upload_part" else None
    params.pop(missing)
    _refused(buildRequest(method, "vo/f", params, viaGateway=True), "needs Size (bytes) and ContentMD5")


@pytest.mark.parametrize("md5", ["", "abc", base64.b64encode(b"x" * 15).decode(), "A" * 21 + "=", "%" * 24, 42])
def test_a_malformed_content_md5_is_refused(md5):
    _refused(buildRequest("put_object", "vo/f", {**PUT, "ContentMD5": md5}, viaGateway=True), "ContentMD5")


def test_direct_puts_send_content_md5_signed_and_may_replace():
    signer = DirectSigner(_settings())
    url, headers = signer.authorise("put_object", "/vo/f", "vo/f", PUT)["Value"]
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers["content-md5"] == PUT["ContentMD5"]
    assert "content-md5" in headers["authorization"] and "if-none-match" not in headers
    assert url == "https://s3.example.org:9000/bucket/vo/f"


def test_one_pass_gives_adler32_and_md5(tmp_path):
    digest = Adler32MD5()
    for start in range(0, len(DATA), 4):
        digest.update(DATA[start : start + 4])
    assert (digest.hexdigest(), digest.md5Base64()) == (PUT["Checksum"], PUT["ContentMD5"])
    path = tmp_path / "f"
    path.write_bytes(DATA)
    assert fileAdlerMD5(str(path)) == (PUT["Checksum"], PUT["ContentMD5"])
    assert fileAdlerMD5(str(tmp_path / "missing")) is False


def test_write_urls_live_minutes():
    assert 60 <= WRITE_URL_SECONDS <= 900
    assert {name for name, operation in OPERATIONS.items() if operation.changesStorage} == {
        "put_object",
        "delete_object",
        "create_multipart_upload",
        "upload_part",
        "complete_multipart_upload",
        "abort_multipart_upload",
        "delete_objects",
        "copy_object",
        "upload_part_copy",
    }


# ---------------------------------------------------------------- point 7: DIRAC 9's presigned POST


def test_the_post_policy_pins_key_checksum_and_size():
    settings = _settings(SecureConnection="False")
    answer = presignPost(settings, signingCredentials(settings).frozen()["Value"], "vo/f", "0000abcd", 600, maxSize=100)
    assert answer["url"] == "http://s3.example.org:9000/bucket/"
    fields = answer["fields"]
    assert fields["key"] == "vo/f" and fields["x-amz-meta-checksum"] == "0000abcd"
    assert fields["x-amz-credential"].startswith("AKID/") and fields["x-amz-signature"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    for pinned in ({"bucket": "bucket"}, {"key": "vo/f"}, {"x-amz-meta-checksum": "0000abcd"}):
        assert pinned in conditions
    assert ["content-length-range", 0, 100] in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    assert SECRET not in json.dumps(answer)


# ---------------------------------------------------------------- point 5: local names from a listing


@pytest.mark.parametrize(
    "name", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "./a", "a/.", "", "a\nb", "a\\..\\b", "a/\x7f"]
)
def test_unsafe_stored_names_are_refused(tmp_path, name):
    target, unsafe = localTarget(str(tmp_path / "top"), name)
    assert target == "" and repr(name) in unsafe, unsafe


def test_safe_stored_names_stay_inside(tmp_path):
    assert localTarget(str(tmp_path), "a/b c/d.txt") == (str(tmp_path / "a" / "b c" / "d.txt"), "")


# ---------------------------------------------------------------- point 6: secrets stay out of repr


def test_no_secret_in_repr_or_str():
    settings = _settings()
    shown = [repr(settings), str(settings), repr(DirectSigner(settings)), repr(signingCredentials(settings))]
    assert all(SECRET not in text for text in shown), shown
    assert "AKID" in repr(settings)


def test_prepared_write_urls_are_used_only_while_fresh():
    """A bulk call's prepared URLs are reused for half their lifetime; later files ask the gateway again."""
    assert PREPARED_URL_SECONDS <= WRITE_URL_SECONDS // 2
    now = time.monotonic()
    assert _isPrepared(("put_object", ("url", {}), now), "put_object")
    assert not _isPrepared(("put_object", ("url", {}), now), "get_object")
    assert not _isPrepared(("put_object", ("url", {}), now - PREPARED_URL_SECONDS - 1), "put_object")
    assert not _isPrepared(None, "put_object")

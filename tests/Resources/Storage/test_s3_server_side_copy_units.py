"""Unit tests of the pure parts of server-side copy (no server, no network): the copy requests and
the headers that pin their source, who may copy from whom, the catalog entries taken, the part plan."""

from __future__ import annotations

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Resources.Storage.S3 import ServerSideCopy as serverSideCopy
from DIRAC.Resources.Storage.S3.Methods import (
    ADD_REPLICA,
    OPERATIONS,
    READ_FILE,
    buildRequest,
    completionBody,
    copySourceHeader,
)
from DIRAC.Resources.Storage.S3.Parts import planParts
from DIRAC.Resources.Storage.S3.ServerSideCopy import PartURLs, StoredObject, canCopy, checkItem
from DIRAC.Resources.Storage.S3.Signers import DirectSigner
from DIRAC.Resources.Storage.S3.TransferSettings import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, GiB, MiB, TiB
from DIRAC.Resources.Storage.S3Storage import S3Storage

ETAG = '"0123456789abcdef0123456789abcdef"'
SOURCE = {"SourceBucket": "source-bucket", "SourceKey": "vo/data/f 1.dat", "SourceETag": ETAG}
PART = {**SOURCE, "UploadId": "upload-1", "PartNumber": 3, "SourceRange": "bytes=10-19"}


def _storage(name: str = "SE", **options) -> S3Storage:
    parameters = {"Host": "s3.example.org", "Port": "9000", "Path": "bucket-" + name.lower(), "Protocol": "s3"}
    parameters.update({"Aws_access_key_id": "AKID", "Aws_secret_access_key": "secret"})
    parameters.update(options)
    return S3Storage(name, {k: v for k, v in parameters.items() if v is not None})


def _refused(result: dict, words: str) -> None:
    assert not result["OK"] and DErrno.cmpError(result, DErrno.EINVAL), result
    assert words in result["Message"], result["Message"]


# ---------------------------------------------------------------- the requests


@pytest.mark.parametrize("viaGateway", [False, True])
def test_a_copy_pins_bucket_key_etag_keeps_metadata_and_never_replaces(viaGateway):
    method, key, query, headers = buildRequest("copy_object", "vo/data/f", SOURCE, viaGateway)["Value"]
    assert (method, key, query) == ("PUT", "vo/data/f", {})
    assert headers == {
        "x-amz-copy-source": "/source-bucket/vo/data/f%201.dat",
        "x-amz-copy-source-if-match": ETAG,
        "x-amz-metadata-directive": "COPY",
        "If-None-Match": "*",
    }


def test_a_part_copy_pins_its_source_and_byte_range():
    method, key, query, headers = buildRequest("upload_part_copy", "vo/data/f", PART, viaGateway=True)["Value"]
    assert (method, key, query) == ("PUT", "vo/data/f", {"uploadId": "upload-1", "partNumber": "3"})
    assert headers == {
        "x-amz-copy-source": "/source-bucket/vo/data/f%201.dat",
        "x-amz-copy-source-if-match": ETAG,
        "x-amz-copy-source-range": "bytes=10-19",
    }


@pytest.mark.parametrize(
    "method,change,words",
    [
        ("copy_object", {"SourceETag": None}, "needs SourceETag"),
        ("copy_object", {"SourceETag": "0123"}, "needs SourceETag"),
        ("copy_object", {"SourceETag": '"a"\r\nx-amz-acl: public"'}, "needs SourceETag"),
        ("copy_object", {"SourceBucket": None}, "needs SourceBucket"),
        ("copy_object", {"SourceBucket": "Bad_Bucket"}, "needs SourceBucket"),
        ("copy_object", {"SourceKey": None}, "needs the URL of a file"),
        ("copy_object", {"SourceKey": "vo/../other"}, "'..' segment"),
        ("copy_object", {"SourceKey": "vo/dir/"}, "not of a directory"),
        ("upload_part_copy", {"SourceRange": None}, "needs SourceRange"),
        ("upload_part_copy", {"SourceRange": "bytes=20-10"}, "needs SourceRange"),
        ("upload_part_copy", {"SourceRange": "bytes=0-"}, "needs SourceRange"),
        ("upload_part_copy", {"SourceRange": f"bytes=0-{5 * GiB}"}, "at most 5 GiB"),
        ("upload_part_copy", {"SourceRange": "bytes=010-20"}, "needs SourceRange"),
        ("upload_part_copy", {"PartNumber": 10001}, "PartNumber between 1 and 10000"),
        ("upload_part_copy", {"UploadId": ""}, "needs UploadId"),
    ],
)
def test_a_copy_without_its_source_pinned_is_refused_in_both_modes(method, change, words):
    params = {name: value for name, value in {**PART, **change}.items() if value is not None}
    if method == "copy_object":
        params = {name: value for name, value in params.items() if name in OPERATIONS[method].params}
    for viaGateway in (False, True):
        _refused(buildRequest(method, "vo/data/f", params, viaGateway), words)


def test_the_gateway_takes_no_other_copy_parameters_and_copies_need_read_and_add_replica():
    _refused(
        buildRequest("copy_object", "vo/f", {**SOURCE, "MetadataDirective": "REPLACE"}, True), "not MetadataDirective"
    )
    _refused(buildRequest("copy_object", "vo/f", {**SOURCE, "Checksum": "00000001"}, True), "not Checksum")
    for method in ("copy_object", "upload_part_copy"):
        operation = OPERATIONS[method]
        assert operation.copiesSource and operation.permission == ADD_REPLICA and operation.changesStorage
    assert READ_FILE == "getFileMetadata"


def test_the_copy_source_header_encodes_the_key():
    assert copySourceHeader("b", "a b/c?d#e%f+g") == "/b/a%20b/c%3Fd%23e%25f%2Bg"
    assert copySourceHeader("b", "plain/key~1") == "/b/plain/key~1"


def test_keys_sign_every_header_that_pins_the_source():
    signer = DirectSigner(_storage().settings)
    url, headers = signer.authorise("copy_object", "/vo/f", "vo/f", SOURCE)["Value"]
    assert url == "https://s3.example.org:9000/bucket-se/vo/f"
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"x-amz-copy-source", "x-amz-copy-source-if-match", "x-amz-metadata-directive", "if-none-match"} <= set(
        signed
    )
    url, headers = signer.authorise("upload_part_copy", "/vo/f", "vo/f", PART)["Value"]
    assert "x-amz-copy-source-range" in headers["Authorization"]


def test_the_completion_lists_the_parts_in_order():
    body = completionBody([{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 2, "ETag": '"b&c"'}])
    assert body == (
        b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part>'
        b'<Part><PartNumber>2</PartNumber><ETag>"b&amp;c"</ETag></Part></CompleteMultipartUpload>'
    )


# ---------------------------------------------------------------- who may copy from whom, what is taken


def test_only_one_service_with_the_same_keys_or_both_keyless_can_copy():
    destination = _storage("DST")
    assert canCopy(destination, _storage("SRC"))
    assert not canCopy(destination, _storage("SRC", Port="9001"))
    assert not canCopy(destination, _storage("SRC", Host="other.example.org"))
    assert not canCopy(destination, _storage("SRC", SecureConnection="False"))
    assert not canCopy(destination, _storage("SRC", Aws_access_key_id="OTHER"))
    keyless = _storage("KEYLESS", Aws_access_key_id=None, Aws_secret_access_key=None)
    assert not canCopy(destination, keyless) and not canCopy(keyless, destination)
    assert canCopy(keyless, _storage("KEYLESS2", Aws_access_key_id=None, Aws_secret_access_key=None))
    assert not canCopy(destination, _storage("BROKEN", Port="nope"))
    assert not canCopy(destination, object())


@pytest.mark.parametrize(
    "item,words",
    [
        ({"Size": 10, "Checksum": "0000000A"}, ""),
        ({"Size": True, "Checksum": "0000000a"}, "Size must be a number of bytes"),
        ({"Size": "10", "Checksum": "0000000a"}, "Size must be a number of bytes"),
        ({"Size": 10, "Checksum": "abc"}, "adler32"),
        ({"Size": 10}, "adler32"),
        ("10", "expected"),
    ],
)
def test_a_catalog_entry_is_size_and_adler32(item, words):
    checked = checkItem(item)
    if not words:
        assert checked == {"OK": True, "Value": (10, "0000000a")}
    else:
        _refused(checked, words)


def test_a_multipart_source_is_known_by_its_etag():
    assert StoredObject(1, '"abc-3"', "").multipart and not StoredObject(1, ETAG, "").multipart


# ---------------------------------------------------------------- the part plan of a copy


@pytest.mark.parametrize("size", [5 * MiB + 1, 6 * GiB, 5 * TiB])
def test_a_copy_in_parts_respects_s3_limits(size):
    plan = planParts(size, 16 * MiB)
    assert len(plan) <= MAX_PARTS and [number for number, _o, _l in plan] == list(range(1, len(plan) + 1))
    assert sum(length for _n, _o, length in plan) == size
    assert all(MIN_PART_SIZE <= length <= MAX_PART_SIZE for _n, _o, length in plan[:-1])
    for number, offset, length in plan[:3] + plan[-1:]:
        params = {**PART, "PartNumber": number, "SourceRange": f"bytes={offset}-{offset + length - 1}"}
        assert buildRequest("upload_part_copy", "vo/f", params, viaGateway=True)["OK"]


def test_part_urls_are_asked_a_window_at_a_time_and_again_once_stale(monkeypatch):
    ranges = {number: f"bytes={number}-{number}" for number in range(1, 2501)}
    windows: list[tuple[int, int]] = []

    def ask(window: dict) -> dict:
        windows.append((min(window), max(window)))
        return {"OK": True, "Value": {number: {"OK": True, "Value": (f"url-{number}", {})} for number in window}}

    now = [1000.0]
    monkeypatch.setattr(serverSideCopy.time, "monotonic", lambda: now[0])
    urls = PartURLs(ranges, ask)
    assert [urls.get(number)["Value"][0] for number in (1, 1000, 1001, 2500)] == [
        "url-1", "url-1000", "url-1001", "url-2500"
    ]  # fmt: skip
    assert windows == [(1, 1000), (1001, 2000), (2500, 2500)], "a window starts at the first part without a URL"
    now[0] += serverSideCopy.PREPARED_URL_SECONDS
    assert urls.get(1500)["Value"][0] == "url-1500" and windows[-1] == (1500, 2499)
    refused = PartURLs(ranges, lambda window: {"OK": False, "Message": "gateway down", "Errno": DErrno.ERPC})
    assert not refused.get(7)["OK"]

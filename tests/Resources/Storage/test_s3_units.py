"""Pure parts of the S3 plugin: signing against boto3, part planning at S3's limits, settings bounds,
key <-> LFN <-> URL round trips, listing and multi-object delete parsing. No server needed."""

from __future__ import annotations

import base64
import datetime
import os
import random
import string
import zlib
from urllib.parse import parse_qsl, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.config import Config

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_OK
from DIRAC.Resources.Storage.S3.Methods import (
    buildRequest,
    bytesContentMD5,
    canDeleteInBulk,
    completionBody,
    deleteObjectsBody,
)
from DIRAC.Resources.Storage.S3.Parts import (
    ChecksummingReader,
    adjustPartSize,
    digestParts,
    planParts,
    spreadPartSize,
    uploadParts,
)
from DIRAC.Resources.Storage.S3.Settings import parseS3Settings
from DIRAC.Resources.Storage.S3.Signers import DirectSigner, encodeQuery
from DIRAC.Resources.Storage.S3.TransferSettings import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    GiB,
    MiB,
    TiB,
    TransferSettings,
    parseTransferSettings,
)
from DIRAC.Resources.Storage.S3Storage import S3Storage, _deleteResult, _listingPage, deleteBatchSize
from DIRAC.Resources.Storage.Utilities import SMALL_IO_BLOCK, growingBatches, readWholeFile, writeNewFile

OPTIONS = {
    "Host": "s3.example.org",
    "Port": "9000",
    "Path": "bucket/prefix",
    "SecureConnection": "False",
    "Aws_access_key_id": "AKIDEXAMPLE",
    "Aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}
#: names another tool may write: control characters, URL delimiters, '%', spaces, '+', unicode
ODD_NAMES = ["a?b", "a#b", "100%.dat", "%41", "a b+c=d", "é ü~(1)", "tab\there", "bell\x07", "cr\rlf\n", "del\x7f"]


def _randomName(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + " !\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}~\t\x01\x1féü€漢"
    segments = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 4))]
    return "/".join(segment if segment not in (".", "..") else segment + "x" for segment in segments)


@pytest.fixture
def frozenClock(monkeypatch):
    """botocore's signing clock fixed, so two signers can be compared byte for byte."""
    moment = datetime.datetime(2026, 11, 29, 12, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: moment)
    return moment


def _settings(**options):
    parsed = parseS3Settings("SE", {**OPTIONS, **options})
    assert parsed["OK"], parsed
    return parsed["Value"]


# ------------------------------------------------------------------ signing


def test_canonical_query_sorts_by_encoded_name_like_botocore():
    """The AWS SigV4 rule: sort after encoding. 'aÿ' sorts after 'a_' raw but before it encoded."""
    assert encodeQuery({"a_": "1", "aÿ": "2"}).startswith("a%C3%BF=2&")
    assert encodeQuery({"a-": "2", "a": "1"}) == "a=1&a-=2"  # by name, not by the joined "name=value"
    rng = random.Random(7)
    for _ in range(300):
        query = {_randomName(rng): _randomName(rng) for _ in range(rng.randint(1, 5))}
        assert encodeQuery(query) == SigV4Auth(None, "s3", "r")._canonical_query_string_params(query)


@pytest.mark.parametrize(
    "style, port, secure", [("path", "9000", "False"), ("virtual", "9000", "False"), ("virtual", "443", "True")]
)
def test_presigned_urls_are_those_boto3_makes(frozenClock, style, port, secure):
    """Differential: our request model + botocore's signer against boto3's whole client, on generated keys."""
    settings = _settings(AddressingStyle=style, Port=port, SecureConnection=secure)
    signer = DirectSigner(settings)
    client = boto3.client(
        "s3",
        endpoint_url=settings.endpoint,
        region_name=settings.region,
        aws_access_key_id=settings.accessKey,
        aws_secret_access_key=settings.secretKey,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )
    rng = random.Random(11)
    for index in range(150):
        key = settings.objectKey("/" + _randomName(rng))
        method, params, boto = [
            ("get_object", {}, {}),
            ("head_object", {}, {}),
            ("delete_object", {}, {}),
            ("upload_part", {"UploadId": "u+/=" + str(index), "PartNumber": 1 + index}, None),
        ][index % 4]
        if boto is None:
            boto = {"UploadId": params["UploadId"], "PartNumber": params["PartNumber"]}
        built = buildRequest(method, key, params)["Value"]
        ours = signer.presign(built[0], key, 600, built[2], built[3])["Value"][0]
        theirs = client.generate_presigned_url(
            method, Params={"Bucket": settings.bucket, "Key": key, **boto}, ExpiresIn=600
        )
        assert (urlsplit(ours).hostname, urlsplit(ours).path, sorted(parse_qsl(urlsplit(ours).query))) == (
            urlsplit(theirs).hostname,
            urlsplit(theirs).path,
            sorted(parse_qsl(urlsplit(theirs).query)),
        ), key


def test_session_token_is_signed_and_sent(frozenClock):
    signer = DirectSigner(_settings(Aws_session_token="TOKEN/with+chars="))
    _url, headers = signer.sign("GET", "k")["Value"]
    assert headers["X-Amz-Security-Token"] == "TOKEN/with+chars="
    assert "x-amz-security-token" in headers["Authorization"]
    url, _headers = signer.presign("GET", "k", 60)["Value"]
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-Security-Token"] == "TOKEN/with+chars="


# ------------------------------------------------------------------ part planning at S3's limits


@pytest.mark.parametrize(
    "size",
    [0, 1, MIN_PART_SIZE, 16 * MiB * MAX_PARTS, 16 * MiB * MAX_PARTS + 1, 157 * GiB, 1 * TiB, 5 * TiB - 1, 5 * TiB],
)
def test_part_plan_fits_s3_limits(size):
    plan = planParts(size, 16 * MiB)
    assert len(plan) <= MAX_PARTS
    assert sum(length for _n, _o, length in plan) == size
    assert [number for number, _o, _l in plan] == list(range(1, len(plan) + 1))
    assert all(MIN_PART_SIZE <= length <= MAX_PART_SIZE for _n, _o, length in plan[:-1])
    assert all(offset == (number - 1) * plan[0][2] for number, offset, _l in plan)


def test_part_size_grows_only_when_needed():
    assert adjustPartSize(10 * GiB, 16 * MiB) == 16 * MiB
    assert adjustPartSize(157 * GiB, 16 * MiB) == 32 * MiB
    assert adjustPartSize(5 * TiB, 16 * MiB) == 1 * GiB
    assert adjustPartSize(1 * GiB, 1024) == MIN_PART_SIZE
    assert adjustPartSize(1 * GiB, 6 * GiB) == MAX_PART_SIZE


# ------------------------------------------------------------------ settings


def test_transfer_settings_defaults_and_values():
    settings, problem = parseTransferSettings({})
    assert (settings, problem) == (TransferSettings(), "")
    settings, _ = parseTransferSettings({"MultipartChunkSize": str(64 * MiB), "PartWorkers": "4", "ReadTimeout": "30"})
    assert (settings.partSize, settings.partWorkers, settings.readTimeout) == (64 * MiB, 4, 30.0)


@pytest.mark.parametrize(
    "option, value",
    [
        ("MultipartThreshold", str(6 * GiB)),
        ("MultipartThreshold", "1024"),
        ("MultipartChunkSize", str(4 * MiB)),
        ("MultipartChunkSize", str(5 * GiB + 1)),
        ("PartWorkers", "0"),
        ("PartWorkers", "65"),
        ("Retries", "-1"),
        ("ConnectTimeout", "0"),
        ("ReadTimeout", "1e9"),
        ("ReadTimeout", "soon"),
        ("PartWorkers", "2.5"),
    ],
)
def test_transfer_settings_out_of_bounds_name_the_option(option, value):
    settings, problem = parseTransferSettings({option: value})
    assert settings is None and problem.startswith(f"option {option} must be") and repr(value) in problem
    parsed = parseS3Settings("SE1", {**OPTIONS, option: value})
    assert not parsed["OK"] and f"SE SE1: option {option} must be" in parsed["Message"], parsed


@pytest.mark.parametrize(
    "options, words",
    [
        ({"Path": "my.bucket", "AddressingStyle": "virtual", "SecureConnection": "True"}, "set AddressingStyle = path"),
        ({"Aws_session_token": "t", "Aws_access_key_id": "", "Aws_secret_access_key": ""}, "Aws_session_token"),
        ({"Aws_role_arn": "role"}, "Aws_role_arn must be a role ARN"),
        ({"Aws_role_arn": "arn:aws:iam::1:role/r", "Aws_role_duration": "60"}, "Aws_role_duration"),
        ({"Aws_role_arn": "arn:aws:iam::1:role/r", "Aws_access_key_id": "", "Aws_secret_access_key": ""}, "needs"),
        ({"Port": "0"}, "option Port"),
    ],
)
def test_bad_s3_options_are_refused_with_the_option_named(options, words):
    parsed = parseS3Settings("SE1", {**OPTIONS, **options})
    assert not parsed["OK"] and words in parsed["Message"], parsed


def test_dotted_bucket_is_fine_with_path_style_or_without_tls():
    assert parseS3Settings("SE", {**OPTIONS, "Path": "my.bucket", "SecureConnection": "True"})["OK"]
    plain = parseS3Settings("SE", {**OPTIONS, "Path": "my.bucket", "AddressingStyle": "virtual"})
    assert plain["OK"] and plain["Value"].objectURL("k")[0] == "my.bucket.s3.example.org:9000"


def test_secrets_stay_out_of_parameters_and_repr():
    storage = S3Storage("SE", {**OPTIONS, "Aws_session_token": "SESSION-SECRET"})
    assert storage.isok, storage.errorMessage if hasattr(storage, "errorMessage") else ""
    shown = f"{storage.getParameters()} {storage.settings!r}"
    assert "SESSION-SECRET" not in shown and OPTIONS["Aws_secret_access_key"] not in shown


# ------------------------------------------------------------------ names: LFN <-> URL <-> key


def test_any_lfn_round_trips_through_its_url_and_key():
    storage = S3Storage("SE", OPTIONS)
    rng = random.Random(3)
    names = ["/vo/" + name for name in ODD_NAMES] + ["/vo/" + _randomName(rng) for _ in range(500)]
    for lfn in names:
        url = storage._lfnToURL(lfn)
        assert storage._urlToLFN(url) == {"OK": True, "Value": lfn}, (lfn, url)
        assert storage._keyToLFN(storage.settings.objectKey(lfn), isPrefix=False)["Value"] == lfn
        assert storage._keyToLFN(storage.settings.listPrefix(lfn), isPrefix=True)["Value"] == lfn
    assert storage._lfnToURL("/vo/plain name é.dat").endswith("/bucket/prefix/vo/plain name é.dat")


@pytest.mark.parametrize("key", ["prefix/a//b", "prefix/a/../b", "prefix/./b", "prefix/", "prefix/a/", "other/a"])
def test_keys_no_lfn_can_stand_for_are_refused(key):
    storage = S3Storage("SE", OPTIONS)
    result = storage._keyToLFN(key, isPrefix=False)
    assert not result["OK"] and "cannot be an LFN" in result["Message"]


# ------------------------------------------------------------------ answers parsed strictly

_LIST = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>{body}</ListBucketResult>"""


def test_listing_keys_are_url_decoded():
    body = _LIST.format(
        body="<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
        "<Contents><Key>d/a%3F%23%25b+%C3%A9%2B%01</Key><Size>1</Size></Contents>"
        "<CommonPrefixes><Prefix>d/sub%20dir/</Prefix></CommonPrefixes>"
    )
    contents, prefixes, token = _listingPage(body.encode())["Value"]
    assert [key for key, _item in contents] == ["d/a?#%b é+\x01"]
    assert (prefixes, token) == (["d/sub dir/"], "")


@pytest.mark.parametrize(
    "body, words",
    [
        ("<Error><Code>InternalError</Code></Error>", "InternalError instead of a listing"),
        (_LIST.format(body="<IsTruncated>true</IsTruncated>"), "no continuation token"),
        ("<ListBucketResult><Key>\x01</Key>", "not XML"),
    ],
)
def test_unreadable_listing_is_an_error_not_an_empty_folder(body, words):
    result = _listingPage(body.encode())
    assert not result["OK"] and words in result["Message"]


def test_delete_objects_body_is_deterministic_and_md5_pinned():
    keys = ["b&<>", "a\tb", "é"]
    body = deleteObjectsBody(keys)
    assert body == deleteObjectsBody(list(reversed(keys))) and b"b&amp;&lt;&gt;" in body
    built = buildRequest("delete_objects", None, {"Keys": keys})["Value"]
    assert built[:3] == ("POST", None, {"delete": ""}) and built[3]["Content-MD5"] == bytesContentMD5(body)
    assert not canDeleteInBulk("a\x01b") and not canDeleteInBulk("cr\rlf") and canDeleteInBulk("tab\tok\n")
    for bad in ([], ["x"] * 1001, ["a\x01b"], [""], "k"):
        refused = buildRequest("delete_objects", None, {"Keys": bad})
        assert not refused["OK"] and refused["Errno"] == DErrno.EINVAL


def test_delete_result_maps_every_key():
    body = (
        "<DeleteResult><Deleted><Key>a</Key></Deleted>"
        "<Error><Key>b</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>"
    )
    assert _deleteResult(body.encode())["Value"] == ({"a"}, {"b": ("AccessDenied", "no")})
    assert not _deleteResult(b"<Error><Code>SlowDown</Code></Error>")["OK"]


def test_checksumming_reader_stops_at_its_limit_and_restarts(tmp_path):
    """The streamed PUT body: at most the announced bytes, adler32 as it goes, ``seek(0)`` for a retry."""
    path = tmp_path / "f"
    path.write_bytes(b"abcdefgh")
    reader = ChecksummingReader(str(path), 5)
    assert reader.read(3) + reader.read() == b"abcde" and reader.read() == b""
    assert reader.hexdigest() == f"{zlib.adler32(b'abcde'):08x}"
    assert reader.seek(0) == 0 and reader.read(100) == b"abcde" and reader.tell() == 5
    with pytest.raises(OSError):
        reader.seek(2)
    reader.close()


def test_presigned_post_form_carries_the_session_token():
    """DIRAC 9's form upload through a gateway whose SE uses temporary keys."""
    from DIRAC.Resources.Storage.S3.Credentials import signingCredentials
    from DIRAC.Resources.Storage.S3.PresignedPost import presignPost

    settings = _settings(Aws_session_token="TEMPORARY-TOKEN")
    form = presignPost(settings, signingCredentials(settings).frozen()["Value"], "vo/f", "0000abcd", 60)
    assert form["fields"]["x-amz-security-token"] == "TEMPORARY-TOKEN"


# ------------------------------------------------------------------ the two passes of a multipart upload


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_the_first_pass_digests_every_part_and_the_whole_file(tmp_path):
    data = os.urandom(12 * MiB + 5)
    path = tmp_path / "big"
    path.write_bytes(data)
    digested = digestParts(str(path), len(data), 5 * MiB, 4, withMD5=True)
    adler, digests = digested["Value"]
    assert adler == zlib.adler32(data)
    pieces = {number: data[offset : offset + length] for number, offset, length in planParts(len(data), 5 * MiB)}
    assert {number: digest.checksumCRC32 for number, digest in digests.items()} == {
        number: _crc32(piece) for number, piece in pieces.items()
    }
    assert {number: digest.contentMD5 for number, digest in digests.items()} == {
        number: bytesContentMD5(piece) for number, piece in pieces.items()
    }
    assert {
        digest.contentMD5 for digest in digestParts(str(path), len(data), 5 * MiB, 4, False)["Value"][1].values()
    } == {""}


def test_a_part_changed_since_the_first_pass_is_never_sent(tmp_path):
    """The object's adler32 comes from the first pass: a part whose CRC32 changed since is refused."""
    data = bytearray(os.urandom(12 * MiB))
    path = tmp_path / "big"
    path.write_bytes(data)
    digests = digestParts(str(path), len(data), 5 * MiB, 4, withMD5=True)["Value"][1]
    sent: dict[int, str] = {}

    def sendPart(number: int, part: bytes, md5: str) -> dict:
        sent[number] = md5
        return S_OK(f"etag{number}")

    uploaded = uploadParts(str(path), len(data), 5 * MiB, sendPart, 1, digests)
    assert uploaded["Value"] == ([{"PartNumber": n, "ETag": f"etag{n}"} for n in (1, 2, 3)], zlib.adler32(data))
    assert sent == {number: digest.contentMD5 for number, digest in digests.items()}
    data[6 * MiB] ^= 0xFF
    path.write_bytes(data)
    sent.clear()
    changed = uploadParts(str(path), len(data), 5 * MiB, sendPart, 1, digests)
    assert DErrno.cmpError(changed, DErrno.EBADCKS) and "changed while being uploaded" in changed["Message"]
    assert 2 not in sent


def test_flexible_checksums_are_signed_for_direct_uploads_only():
    part = {"UploadId": "u", "PartNumber": 1, "Size": 3}
    crc = _crc32(b"abc")
    assert buildRequest("upload_part", "k", {**part, "ChecksumCRC32": crc})["Value"][3]["x-amz-checksum-crc32"] == crc
    created = buildRequest("create_multipart_upload", "k", {"ChecksumAlgorithm": "CRC32"})["Value"][3]
    assert created["x-amz-checksum-algorithm"] == "CRC32"
    for wrong in ("abc", base64.b64encode(b"12345").decode(), 7):
        assert not buildRequest("upload_part", "k", {**part, "ChecksumCRC32": wrong})["OK"]
    assert not buildRequest("create_multipart_upload", "k", {"ChecksumAlgorithm": "SHA1"})["OK"]
    viaGateway = {**part, "ContentMD5": bytesContentMD5(b"abc"), "ChecksumCRC32": crc}
    refused = buildRequest("upload_part", "k", viaGateway, viaGateway=True)
    assert not refused["OK"] and "ChecksumCRC32" in refused["Message"]


def test_growing_batches_start_small_and_cover_every_item_once():
    items = [f"i{index}" for index in range(1000)]
    batches = growingBatches(items, 64, 1000)
    assert [len(batch) for batch in batches] == [64, 128, 256, 512, 40]
    assert [item for batch in batches for item in batch] == items
    assert growingBatches(items[:3], 64, 1000) == [items[:3]] and growingBatches([], 64, 1000) == []
    assert [len(batch) for batch in growingBatches(items, 300, 400)] == [300, 400, 300]


@pytest.mark.parametrize(("keys", "requests"), [(2, 1), (6, 1), (150, 2), (800, 8), (1000, 8), (5000, 8), (20000, 20)])
def test_a_bulk_remove_keeps_several_deletes_in_flight_within_s3s_limit(keys, requests):
    """Eight DeleteObjects at once where there are enough keys, at least 100 keys each, at most 1,000."""
    batch = deleteBatchSize(keys)
    assert -(-keys // batch) == requests and batch <= 1000


@pytest.mark.parametrize(
    ("size", "parts"), [(17 * MiB, 4), (64 * MiB, 10), (100 * MiB, 10), (160 * MiB, 10), (1 * GiB, 64), (2 * MiB, 1)]
)
def test_parts_are_spread_over_the_workers_down_to_5_mib(size, parts):
    """16 MiB parts at most (the setting), smaller while that keeps the 10 workers busy, never under 5 MiB."""
    plan = planParts(size, spreadPartSize(size, 16 * MiB, 10))
    assert len(plan) == parts
    assert all(MIN_PART_SIZE <= length <= 16 * MiB for _number, _offset, length in plan[:-1])


def test_the_completion_lists_each_parts_crc32_when_the_upload_has_that_algorithm():
    parts = [{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 2, "ETag": '"b"'}]
    plain = completionBody(parts).decode()
    assert plain.count("<Part>") == 2 and "ChecksumCRC32" not in plain
    withCRC = completionBody([{**part, "ChecksumCRC32": "AAAAAQ=="} for part in parts]).decode()
    assert withCRC.count("<ChecksumCRC32>AAAAAQ==</ChecksumCRC32></Part>") == 2


@pytest.mark.parametrize("size", [0, 10 * 1024, SMALL_IO_BLOCK, SMALL_IO_BLOCK + 1])
def test_small_files_are_read_and_written_whole(tmp_path, size):
    data = os.urandom(size)
    target = tmp_path / "new.dat"
    target.write_bytes(b"older and longer" * 100_000)
    writeNewFile(str(target), memoryview(data))
    assert target.read_bytes() == data  # emptied first: nothing of the older content is left
    assert readWholeFile(str(target)) == data


def test_small_file_helpers_raise_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        readWholeFile(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        writeNewFile(str(tmp_path / "no" / "folder"), b"x")

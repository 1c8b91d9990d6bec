"""S3 storage elements with direct access, against moto and rclone on 127.0.0.1."""

from __future__ import annotations

import os
import zlib

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import fileAdler
from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import corrupt_object, s3_se_cfg

LFN = "/vo/user/a/alice/f.dat"


@pytest.fixture
def se(s3_bucket, dirac_cfg):
    """A StorageElement 'S3-DIRECT' on a fresh bucket of each server."""
    server, bucket = s3_bucket
    dirac_cfg(s3_se_cfg("S3-DIRECT", server, bucket))
    storage = StorageElement("S3-DIRECT")
    assert storage.valid, storage.errorReason
    return storage


def _write(path, size: int, seed: int = 1) -> str:
    data = (bytes([seed % 251]) * 1021 + os.urandom(3))[:1024] * (size // 1024) + b"x" * (size % 1024)
    path.write_bytes(data)
    return str(path)


def test_put_metadata_get_remove_round_trip(se, tmp_path):
    source = _write(tmp_path / "f.dat", 12345)
    put = se.putFile({LFN: source})
    assert put["OK"] and put["Value"]["Successful"] == {LFN: 12345}, put

    meta = se.getFileMetadata(LFN)["Value"]["Successful"][LFN]
    assert meta["Size"] == 12345
    assert meta["Checksum"] == fileAdler(source)
    assert meta["ChecksumType"] == "ADLER32"
    assert meta["File"] is True and meta["Directory"] is False

    assert se.exists(LFN)["Value"]["Successful"][LFN] is True
    assert se.isFile(LFN)["Value"]["Successful"][LFN] is True
    assert se.getFileSize(LFN)["Value"]["Successful"][LFN] == 12345

    target = tmp_path / "out"
    target.mkdir()
    got = se.getFile(LFN, localPath=str(target))
    assert got["Value"]["Successful"] == {LFN: 12345}, got
    assert (target / "f.dat").read_bytes() == (tmp_path / "f.dat").read_bytes()

    assert se.removeFile(LFN)["Value"]["Successful"] == {LFN: True}
    assert se.exists(LFN)["Value"]["Successful"][LFN] is False
    # removing again: a missing object counts as removed
    assert se.removeFile(LFN)["Value"]["Successful"] == {LFN: True}


def test_directories_by_prefix(se, tmp_path):
    files = {f"/vo/data/run1/f{i}.dat": _write(tmp_path / f"f{i}", 1000 + i) for i in range(5)}
    files["/vo/data/run1/sub/g.dat"] = _write(tmp_path / "g", 10)
    assert not se.putFile(files)["Value"]["Failed"]

    assert se.createDirectory("/vo/data/new")["Value"]["Successful"]["/vo/data/new"] is True
    assert se.isDirectory("/vo/data/run1")["Value"]["Successful"]["/vo/data/run1"] is True
    # A path that does not exist is Failed with the reason (as DIRAC), a file is not a directory.
    missing = se.isDirectory("/vo/data/nothing")["Value"]
    assert missing["Successful"] == {} and "/vo/data/nothing does not exist" in missing["Failed"]["/vo/data/nothing"]
    assert se.isDirectory("/vo/data/run1/f0.dat")["Value"]["Successful"]["/vo/data/run1/f0.dat"] is False
    assert se.isFile("/vo/data/run1")["Value"]["Successful"]["/vo/data/run1"] is False

    listing = se.listDirectory("/vo/data/run1")["Value"]["Successful"]["/vo/data/run1"]
    assert sorted(listing["Files"]) == [f"/vo/data/run1/f{i}.dat" for i in range(5)]
    assert list(listing["SubDirs"]) == ["/vo/data/run1/sub"]
    assert listing["Files"]["/vo/data/run1/f3.dat"]["Size"] == 1003

    size = se.getDirectorySize("/vo/data/run1")["Value"]["Successful"]["/vo/data/run1"]
    assert size == {"Files": 5, "Size": sum(1000 + i for i in range(5)), "SubDirs": 1}

    out = tmp_path / "dl"
    out.mkdir()
    got = se.getDirectory("/vo/data/run1", localPath=str(out))["Value"]["Successful"]["/vo/data/run1"]
    assert got["Files"] == 6 and (out / "run1" / "sub" / "g.dat").stat().st_size == 10

    removed = se.removeDirectory("/vo/data/run1", recursive=True)["Value"]["Successful"]["/vo/data/run1"]
    assert removed["FilesRemoved"] == 6
    assert "/vo/data/run1" in se.isDirectory("/vo/data/run1")["Value"]["Failed"]


def test_put_directory(se, tmp_path):
    folder = tmp_path / "tree"
    (folder / "a").mkdir(parents=True)
    _write(folder / "a" / "x.dat", 2048)
    _write(folder / "y.dat", 100)
    result = se.putDirectory({"/vo/tree": str(folder)})["Value"]["Successful"]["/vo/tree"]
    assert result == {"Files": 2, "Size": 2148}
    assert se.exists("/vo/tree/a/x.dat")["Value"]["Successful"]["/vo/tree/a/x.dat"] is True


def test_multipart_upload_and_ranged_download(s3_bucket, dirac_cfg, tmp_path):
    server, bucket = s3_bucket
    dirac_cfg(s3_se_cfg("S3-DIRECT", server, bucket, MultipartThreshold=5242880, MultipartChunkSize=5242880))
    se = StorageElement("S3-DIRECT")
    source = tmp_path / "big.dat"
    source.write_bytes(os.urandom(12 * 1024 * 1024 + 17))
    put = se.putFile({"/vo/big.dat": str(source)})
    assert put["Value"]["Successful"] == {"/vo/big.dat": source.stat().st_size}, put
    meta = se.getFileMetadata("/vo/big.dat")["Value"]["Successful"]["/vo/big.dat"]
    assert meta["Checksum"] == fileAdler(str(source))
    out = tmp_path / "out"
    out.mkdir()
    got = se.getFile("/vo/big.dat", localPath=str(out))
    assert got["Value"]["Successful"], got
    assert zlib.adler32((out / "big.dat").read_bytes()) == zlib.adler32(source.read_bytes())


def test_corrupted_object_is_detected(rclone_s3_server, dirac_cfg, tmp_path):
    bucket = rclone_s3_server.make_bucket()
    dirac_cfg(s3_se_cfg("S3-DIRECT", rclone_s3_server, bucket))
    se = StorageElement("S3-DIRECT")
    source = _write(tmp_path / "f.dat", 4096)
    assert se.putFile({LFN: source})["Value"]["Successful"]
    corrupt_object(rclone_s3_server, bucket, LFN.lstrip("/"))
    out = tmp_path / "out"
    out.mkdir()
    result = se.getFile(LFN, localPath=str(out))
    assert LFN in result["Value"]["Failed"], result
    assert "corrupt" in result["Value"]["Failed"][LFN]
    assert not (out / "f.dat").exists(), "a corrupt download must not be left behind"


def test_two_urls_with_one_basename_do_not_overwrite(se, tmp_path):
    first, second = "/vo/a/same.dat", "/vo/b/same.dat"
    se.putFile({first: _write(tmp_path / "1", 100, 1), second: _write(tmp_path / "2", 200, 2)})
    out = tmp_path / "out"
    out.mkdir()
    result = se.getFile([first, second], localPath=str(out))["Value"]
    assert list(result["Successful"]) == [first]
    assert "nothing overwritten" in result["Failed"][second]
    assert (out / "same.dat").stat().st_size == 100


@pytest.mark.parametrize(
    "bad",
    ["", "relative/path", "/vo/../etc/passwd", "/vo//double", "/vo/./here", 42],
)
def test_bad_lfns_fail_with_reason_and_touch_nothing(se, tmp_path, bad):
    source = _write(tmp_path / "f", 10)
    result = se.putFile({bad: source}) if isinstance(bad, str) else se.putFile(bad)
    if not result["OK"]:
        assert "expected a str" in result["Message"]
        return
    assert bad in result["Value"]["Failed"] and not result["Value"]["Successful"]
    assert se.listDirectory("/")["Value"]["Successful"]["/"]["Files"] == {}


def test_plugin_refuses_foreign_and_traversing_urls(se):
    storage = se.storages[0]
    base = storage.getURLBase()["Value"]
    other = base.replace(storage.settings.bucket, "otherbucket")
    urls = [
        other + "/vo/f",
        base.replace("127.0.0.1", "10.0.0.1") + "/vo/f",
        base.replace(str(storage.settings.port), "1") + "/vo/f",
        base + "/vo/../x",
        base + "/vo//x",
        "s3:/broken",
    ]
    result = storage.exists(urls)["Value"]
    assert set(result["Failed"]) == set(urls) and not result["Successful"]
    assert "bucket" in result["Failed"][urls[0]] or "outside" in result["Failed"][urls[0]]


def test_bad_local_sources(se, tmp_path):
    result = se.putFile({"/vo/missing": str(tmp_path / "nope"), "/vo/folder": str(tmp_path)})["Value"]
    assert "does not exist" in result["Failed"]["/vo/missing"]
    assert "not a regular file" in result["Failed"]["/vo/folder"]


def test_access_urls(se, tmp_path):
    import requests

    source = _write(tmp_path / "f.dat", 3000)
    se.putFile({LFN: source})
    native = se.getURL(LFN, protocol="s3")["Value"]["Successful"][LFN]
    assert native.startswith("s3://127.0.0.1:") and native.endswith(LFN)
    url = se.getURL(LFN, protocol="http")["Value"]["Successful"][LFN]
    assert "X-Amz-Expires=86400" in url
    assert requests.get(url, timeout=10).content == (tmp_path / "f.dat").read_bytes()
    refused = se.getURL(LFN, protocol="gsiftp")
    assert not refused["OK"] and DErrno.cmpError(refused, DErrno.EPROTONOSUPPORT)


def test_missing_bucket_is_an_error_not_false(s3_server, dirac_cfg):
    dirac_cfg(s3_se_cfg("S3-DIRECT", s3_server, "no-such-bucket-here"))
    result = StorageElement("S3-DIRECT").exists(LFN)
    assert LFN in result["Value"]["Failed"], result
    assert "bucket no-such-bucket-here does not exist" in result["Value"]["Failed"][LFN]


def test_banned_se_touches_nothing(s3_bucket, dirac_cfg, tmp_path):
    server, bucket = s3_bucket
    dirac_cfg(s3_se_cfg("S3-DIRECT", server, bucket).replace("S3-DIRECT\n", "S3-DIRECT\n", 1))
    from DIRAC.ConfigurationSystem.Client.Config import gConfig
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import cfgWithOption

    gConfig.loadCFG(cfgWithOption("/Resources/StorageElements/S3-DIRECT/WriteAccess", "InActive"))
    se = StorageElement("S3-DIRECT")
    result = se.putFile({LFN: _write(tmp_path / "f", 10)})
    assert not result["OK"] and "banned for write" in result["Message"]
    assert se.exists(LFN)["Value"]["Successful"][LFN] is False


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"Port": "abc"}, "option Port"),
        ({"Path": None}, "option Path"),
        ({"Host": None}, "option Host"),
        ({"SecureConnection": "maybe"}, "option SecureConnection"),
        ({"Aws_secret_access_key": None}, "must be given together"),
        ({"PluginName": "NoSuchThing"}, "no storage plugin named NoSuchThing"),
    ],
)
def test_bad_configuration_is_a_clear_error(moto_server, dirac_cfg, options, expected):
    dirac_cfg(s3_se_cfg("S3-BAD", moto_server, "somebucket", **options))
    se = StorageElement("S3-BAD")
    result = se.exists(LFN)
    assert not result["OK"] and expected in result["Message"] and "S3-BAD" in result["Message"], result


def test_unknown_se_and_empty_port(moto_server, dirac_cfg):
    dirac_cfg(s3_se_cfg("S3-DIRECT", moto_server, "bucket-one", Port=""))
    se = StorageElement("S3-DIRECT")
    assert se.valid, se.errorReason
    assert se.storages[0].settings.port == 80
    result = StorageElement("NOPE").exists(LFN)
    assert not result["OK"] and "NOPE is not defined" in result["Message"]


def test_requests_with_a_body_declare_an_unsigned_payload(se):
    """rclone and moto do not check x-amz-content-sha256; AWS, MinIO and Ceph do.

    The body is sent apart from the signed request, so the signature must say
    UNSIGNED-PAYLOAD rather than the hash of an empty body.
    """
    signer = se.storages[0].signer
    for method in ("PUT", "POST", "HEAD"):
        _url, headers = signer.sign(method, "vo/f.dat", None, {"x-amz-meta-checksum": "00000001"})
        assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"


def test_names_needing_url_encoding(rclone_s3_server, dirac_cfg, tmp_path):
    """rclone checks every signature: names with spaces, '+', '=' and non-ASCII letters must sign right."""
    import requests

    bucket = rclone_s3_server.make_bucket()
    dirac_cfg(s3_se_cfg("S3-DIRECT", rclone_s3_server, bucket))
    se = StorageElement("S3-DIRECT")
    names = ["/vo/odd names/a b+c=d,é ü~(1).dat", "/vo/odd names/100%.dat"]
    source = _write(tmp_path / "f", 2000)
    assert se.putFile(dict.fromkeys(names, source))["Value"]["Successful"] == dict.fromkeys(names, 2000)
    listing = se.listDirectory("/vo/odd names")["Value"]["Successful"]["/vo/odd names"]
    assert sorted(listing["Files"]) == sorted(names)
    for name in names:
        url = se.getURL(name, protocol="http")["Value"]["Successful"][name]
        assert requests.get(url, timeout=10).content == (tmp_path / "f").read_bytes()
    assert se.removeFile(names)["Value"]["Successful"] == dict.fromkeys(names, True)

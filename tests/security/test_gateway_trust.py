"""The S3 gateway as an attacker sees it, on a site like the README's.

A catalog and a gateway run as services with a test CA; the gateway holds the keys of three
SEs: ``GW-RCLONE`` (rclone, which checks signatures and Content-MD5), ``GW-MOTO`` (moto, which
refuses ``If-None-Match`` overwrites) and ``GW-BANNED`` (moto, write and remove access banned).
The test process is a client without keys: alice and bob (group ``dirac_user``) ask the gateway
directly, as any program holding their proxy could. Each test asserts the refusal and its reason,
and looks at the store itself (boto3 with the keys) to see that nothing was written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "security"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from catalog_site import forge_proxy  # noqa: E402

from catalog_fixtures import client_environment, systems_cfg  # noqa: E402
from DIRAC.Core.Utilities.Adler import stringAdler  # noqa: E402
from DIRAC.DataManagementSystem.Client.S3GatewayClient import S3GatewayClient  # noqa: E402
from DIRAC.Resources.Storage.StorageElement import StorageElement  # noqa: E402
from rpc_fixtures import ServiceLauncher, free_port, service_cfg  # noqa: E402
from s3_fixtures import merge_cfg, s3_se_cfg  # noqa: E402

HOME = "/testvo/user/a/alice"
BOB_HOME = "/testvo/user/b/bob"
MiB = 1024 * 1024
BANNED = "Resources\n{\n StorageElements\n {\n  GW-BANNED\n  {\n   WriteAccess = Banned\n   RemoveAccess = Banned\n"
BANNED += "  }\n }\n}\n"


@pytest.fixture(scope="module")
def site(test_ca, rclone_s3_server, moto_server, tmp_path_factory):
    """Catalog and gateway services; this process is configured as a client without S3 keys."""
    folder = tmp_path_factory.mktemp("gateway-trust")
    stores = {
        "GW-RCLONE": (rclone_s3_server, rclone_s3_server.make_bucket()),
        "GW-MOTO": (moto_server, moto_server.make_bucket()),
    }
    stores["GW-BANNED"] = stores["GW-MOTO"]
    catalogPort, gatewayPort = free_port(), free_port()
    options = {"Services/S3Gateway/AuditFile": str(folder / "audit.jsonl")}
    systems = systems_cfg(folder, catalogPort, [gatewayPort], options, facade=True)
    small = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}
    serverSEs = [s3_se_cfg(name, server, bucket) for name, (server, bucket) in stores.items()]
    clientSEs = [s3_se_cfg(name, server, bucket, with_keys=False, **small) for name, (server, bucket) in stores.items()]
    clientSEs.append(s3_se_cfg("MOTO-DIRECT", moto_server, stores["GW-MOTO"][1], **small))
    serverCfg, clientCfg = folder / "server.cfg", folder / "client.cfg"
    serverCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *serverSEs, BANNED)))
    clientCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *clientSEs, BANNED)))
    launcher = ServiceLauncher()
    try:
        launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
        launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
        proxies = {user: test_ca.proxy(user, "dirac_user", path=folder / f"{user}.pem") for user in ("alice", "bob")}
        proxies["alice-admin"] = test_ca.proxy("alice", "dirac_admin", path=folder / "alice-admin.pem")
        proxies["alice-forged-admin"] = forge_proxy(proxies["alice"], folder / "alice-forged.pem", "dirac_admin")
        environment = client_environment(clientCfg, restore=["X509_USER_PROXY"], X509_CERT_DIR=str(test_ca.caDir))
        with environment:
            yield {"folder": folder, "stores": stores, "proxies": proxies}
    finally:
        launcher.stopAll()


@pytest.fixture
def alice(site, monkeypatch):
    monkeypatch.setenv("X509_USER_PROXY", str(site["proxies"]["alice"]))
    return site


def _as(site, monkeypatch, user: str) -> None:
    monkeypatch.setenv("X509_USER_PROXY", str(site["proxies"][user]))


def _url(site, se: str, lfn: str = "") -> str:
    server, bucket = site["stores"][se]
    return f"s3://{server.host}:{server.port}/{bucket}{lfn}"


def _ask(se: str, method: str, urls, expiration: int = 600) -> dict:
    return S3GatewayClient().createPresignedUrl(se, method, urls, expiration)


def _bulk(result: dict) -> tuple[dict, dict]:
    assert result["OK"], result
    return result["Value"]["Successful"], result["Value"]["Failed"]


def _putParams(data: bytes) -> dict:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    return {"Checksum": stringAdler(data), "Size": len(data), "ContentMD5": md5}


def _signedHeaders(signedURL: str, params: dict) -> dict:
    """The headers a put URL was signed with (its ``X-Amz-SignedHeaders``), as a client using it sends them."""
    values = {"x-amz-meta-checksum": params["Checksum"], "content-md5": params["ContentMD5"], "if-none-match": "*"}
    names = parse_qs(urlsplit(signedURL).query)["X-Amz-SignedHeaders"][0].split(";")
    return {name: values[name] for name in names if name in values}


def _stored(site, se: str, lfn: str) -> bytes | None:
    """The bytes the store holds for ``lfn`` (read with the keys), None when there is no object."""
    server, bucket = site["stores"][se]
    try:
        return server.client().get_object(Bucket=bucket, Key=lfn.lstrip("/"))["Body"].read()
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("NoSuchKey", "404"), error
        return None


def _audited(site, lfnOrUrl: str) -> list[dict]:
    lines = (site["folder"] / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if lfnOrUrl in (r.get("lfn"), r.get("url"))]


# ---------------------------------------------------------------- 1. no listing of the whole bucket


@pytest.mark.parametrize("method", ["get_object", "head_object", "delete_object"])
def test_the_bucket_itself_is_never_signed(alice, method):
    """The SE's base URL mapped to LFN '/' and was signed as ``GET /bucket/``: every key of every user."""
    urls = [_url(alice, "GW-RCLONE"), _url(alice, "GW-RCLONE", "/"), _url(alice, "GW-RCLONE", f"{HOME}/")]
    successful, failed = _bulk(_ask("GW-RCLONE", method, urls))
    assert successful == {}
    assert set(failed) == set(urls)
    assert all(f"{method} needs the URL of a file" in reason for reason in failed.values()), failed
    assert all(not record["granted"] for url in urls for record in _audited(alice, url))
    server, bucket = alice["stores"]["GW-RCLONE"]
    assert server.client().head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_put_on_the_bucket_is_never_signed(alice):
    params = _putParams(b"x")
    urls = {_url(alice, "GW-MOTO"): params, _url(alice, "GW-MOTO", f"{HOME}/"): params}
    successful, failed = _bulk(_ask("GW-MOTO", "put_object", urls))
    assert successful == {} and all("put_object needs the URL of a file" in r for r in failed.values()), failed


@pytest.mark.parametrize("operation", ["acl", "uploads", "versions", "policy", "tagging", "versionId"])
def test_parameters_that_change_the_operation_are_refused(alice, operation):
    lfn = f"{HOME}/trust/p.dat"
    inURL = f"{_url(alice, 'GW-RCLONE', lfn)}?{operation}"
    successful, failed = _bulk(
        _ask("GW-RCLONE", "get_object", {inURL: {}, _url(alice, "GW-RCLONE", lfn): {operation: ""}})
    )
    assert successful == {}, successful
    assert "must not carry a query" in failed[inURL]
    assert f"get_object takes no parameters; not {operation}" in failed[_url(alice, "GW-RCLONE", lfn)]


def test_encoded_separators_do_not_reach_another_users_file(site, monkeypatch, tmp_path):
    """``%2F`` and ``%2E%2E`` in a URL stay literal characters of one key, never a way into bob's home."""
    _as(site, monkeypatch, "bob")
    secret = os.urandom(100)
    path = tmp_path / "secret"
    path.write_bytes(secret)
    assert StorageElement("GW-RCLONE").putFile({f"{BOB_HOME}/secret": str(path)})["Value"]["Successful"]
    _as(site, monkeypatch, "alice")
    for trick in ("/%2E%2E/%2E%2E/b/bob/secret", "%2F..%2F..%2Fb%2Fbob%2Fsecret", "/..%2F..%2Fb/bob/secret"):
        url = _url(site, "GW-RCLONE", HOME + trick)
        successful, failed = _bulk(_ask("GW-RCLONE", "get_object", [url]))
        if url in successful:
            answer = requests.get(successful[url], timeout=10)
            assert answer.status_code == 404 and secret not in answer.content, (trick, answer.status_code)
        else:
            assert url in failed


def test_malformed_url_lists_get_a_clear_error(alice):
    nested = _ask("GW-RCLONE", "get_object", [[_url(alice, "GW-RCLONE", f"{HOME}/f")], {"a": 1}])
    assert not nested["OK"] and "urls must be a list of URL strings" in nested["Message"], nested


def _listing(se: str, url: str, params: dict, method: str = "list_objects") -> dict:
    return S3GatewayClient().getListing(se, method, url, params)


def test_a_listing_is_answered_by_the_gateway_for_one_directory_with_checked_parameters(alice):
    """A listing is never signed (S3's answer shows what the catalog hides); the gateway answers it."""
    directory = _url(alice, "GW-RCLONE", HOME)
    signed = _ask("GW-RCLONE", "list_objects", [directory])
    assert not signed["OK"] and "not signed" in signed["Message"], signed
    answered = _listing("GW-RCLONE", directory, {"MaxKeys": 5})
    assert answered["OK"] and answered["Value"].startswith("<ListBucketResult>"), answered
    assert f"<Prefix>{HOME[1:]}/</Prefix>" in answered["Value"]
    smuggled = [
        (directory, {"MaxKeys": 100000}, "MaxKeys must be 1..1000"),
        (directory, {"Prefix": ""}, "not Prefix"),
        (directory, {"delimiter": ""}, "not delimiter"),
        (directory, {"MaxKeys": "all"}, "MaxKeys must be 1..1000"),
        (_url(alice, "GW-RCLONE", f"{HOME}/../../"), {}, "segment"),
    ]
    for url, params, reason in smuggled:
        refused = _listing("GW-RCLONE", url, params)
        assert not refused["OK"] and reason in refused["Message"], (params, refused)
    wrongMethod = _listing("GW-RCLONE", directory, {}, method="get_object")
    assert not wrongMethod["OK"] and "getListing answers" in wrongMethod["Message"]


def test_a_private_directory_is_not_listed_for_others(site, monkeypatch):
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    _as(site, monkeypatch, "alice")
    private = f"{HOME}/private"
    assert FileCatalogClient().createDirectory(private)["OK"]
    assert FileCatalogClient().changePathMode({private: 0o700})["OK"]
    _as(site, monkeypatch, "bob")
    url = _url(site, "GW-RCLONE", private)
    for method in ("list_objects", "list_multipart_uploads"):
        refused = _listing("GW-RCLONE", url, {}, method)
        assert not refused["OK"] and "permission denied" in refused["Message"], refused


def test_a_delegated_proxy_claiming_another_group_gets_nothing_signed(site, monkeypatch, tmp_path):
    """A proxy signed by alice's dirac_user proxy claiming dirac_admin: bob's private file stays private."""
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    _as(site, monkeypatch, "bob")
    private = f"{BOB_HOME}/vault"
    path = tmp_path / "vault.dat"
    path.write_bytes(b"bob only")
    assert StorageElement("GW-RCLONE").putFile({f"{private}/f.dat": str(path)})["Value"]["Successful"]
    assert FileCatalogClient().createDirectory(private)["OK"]
    assert FileCatalogClient().changePathMode({private: 0o700})["OK"]
    url = _url(site, "GW-RCLONE", f"{private}/f.dat")
    _as(site, monkeypatch, "alice-admin")
    assert url in _bulk(_ask("GW-RCLONE", "get_object", [url]))[0], "the real manager group may read it"
    for who in ("alice", "alice-forged-admin"):
        _as(site, monkeypatch, who)
        answer = _ask("GW-RCLONE", "get_object", [url])
        assert not answer["OK"] or (url not in answer["Value"]["Successful"] and url in answer["Value"]["Failed"])


# ---------------------------------------------------------------- 2. a put URL binds the bytes


def test_other_bytes_are_refused_by_rclone_with_a_valid_put_url(alice):
    lfn = f"{HOME}/trust/bound.dat"
    good, bad = os.urandom(4096), os.urandom(4096)
    params = _putParams(good)
    url = _url(alice, "GW-RCLONE", lfn)
    signed = _bulk(_ask("GW-RCLONE", "put_object", {url: params}))[0][url]
    pinned = _signedHeaders(signed, params)
    assert set(pinned) == {"x-amz-meta-checksum", "content-md5", "if-none-match"}
    withPinned = requests.put(signed, data=bad, headers=pinned, timeout=10)
    assert withPinned.status_code == 400 and "BadDigest" in withPinned.text, withPinned.text
    withoutMD5 = {name: value for name, value in pinned.items() if name != "content-md5"}
    assert requests.put(signed, data=bad, headers=withoutMD5, timeout=10).status_code == 403
    ownMD5 = {**pinned, "content-md5": _putParams(bad)["ContentMD5"]}
    assert requests.put(signed, data=bad, headers=ownMD5, timeout=10).status_code == 403
    assert _stored(alice, "GW-RCLONE", lfn) is None
    assert requests.put(signed, data=good, headers=pinned, timeout=10).status_code == 200
    assert _stored(alice, "GW-RCLONE", lfn) == good


def test_a_put_url_cannot_become_a_copy_of_another_users_file(site, monkeypatch, tmp_path):
    """rclone, like AWS, refuses x-amz-* headers that were not signed: no ``x-amz-copy-source`` smuggling."""
    _as(site, monkeypatch, "bob")
    path = tmp_path / "private"
    path.write_bytes(b"bob's private bytes")
    assert StorageElement("GW-RCLONE").putFile({f"{BOB_HOME}/private": str(path)})["Value"]["Successful"]
    _as(site, monkeypatch, "alice")
    lfn = f"{HOME}/trust/copy.dat"
    params = _putParams(b"")
    url = _url(site, "GW-RCLONE", lfn)
    signed = _bulk(_ask("GW-RCLONE", "put_object", {url: params}))[0][url]
    _server, bucket = site["stores"]["GW-RCLONE"]
    smuggled = {**_signedHeaders(signed, params), "x-amz-copy-source": f"{bucket}{BOB_HOME}/private"}
    answer = requests.put(signed, data=b"", headers=smuggled, timeout=10)
    assert answer.status_code == 403 and "not signed" in answer.text, answer.text
    assert _stored(site, "GW-RCLONE", lfn) is None


@pytest.mark.parametrize("missing", [("Size",), ("ContentMD5",), ("Size", "ContentMD5")])
def test_a_write_url_without_size_and_md5_is_refused(alice, missing):
    lfn = f"{HOME}/trust/unbound.dat"
    params = {name: value for name, value in _putParams(b"abc").items() if name not in missing}
    part = {**{k: v for k, v in params.items() if k != "Checksum"}, "UploadId": "upload", "PartNumber": 1}
    url = _url(alice, "GW-RCLONE", lfn)
    for method, asked in (("put_object", params), ("upload_part", part)):
        successful, failed = _bulk(_ask("GW-RCLONE", method, {url: asked}))
        assert successful == {} and "needs Size (bytes) and ContentMD5" in failed[url], (method, failed)


def test_direct_uploads_bind_the_bytes_sent(site, monkeypatch, tmp_path):
    """With keys, a put carries the MD5 of the bytes read and each part of a multipart upload their CRC32
    (the flexible checksum boto3 sends; AWS, MinIO and Ceph refuse other bytes), all signed."""
    storage = StorageElement("MOTO-DIRECT").storages[0]
    authorised: list[tuple[str, dict]] = []
    original = storage.signer.authorise

    def recording(s3Method, lfn, key, params=None):
        result = original(s3Method, lfn, key, params)
        authorised.append((s3Method, {name.lower(): value for name, value in result["Value"][1].items()}))
        return result

    monkeypatch.setattr(storage.signer, "authorise", recording)
    small, big = os.urandom(1000), os.urandom(6 * MiB)
    for name, data in (("direct.dat", small), ("direct-big.dat", big)):
        (tmp_path / name).write_bytes(data)
        lfn = f"{HOME}/trust/{name}"
        assert storage.putFile({_url(site, "GW-MOTO", lfn): str(tmp_path / name)})["Value"]["Successful"]
    methods = ("put_object", "create_multipart_upload", "upload_part")
    writes = [(method, headers) for method, headers in authorised if method in methods]
    assert [method for method, _headers in writes] == ["put_object", "create_multipart_upload", *["upload_part"] * 2]
    assert writes[0][1]["content-md5"] == _putParams(small)["ContentMD5"]
    assert writes[1][1]["x-amz-checksum-algorithm"] == "CRC32"
    parts = {_crc32(big[: 5 * MiB]), _crc32(big[5 * MiB :])}
    assert {headers["x-amz-checksum-crc32"] for _method, headers in writes[2:]} == parts
    assert "content-md5" in writes[0][1]["authorization"]
    assert all("x-amz-checksum-crc32" in headers["authorization"] for _method, headers in writes[2:])


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# ---------------------------------------------------------------- 3. a put URL does not outlive its question


def test_a_put_url_never_replaces_an_object_created_since_on_moto(site, monkeypatch, tmp_path):
    """Bob's URL for a free name in a shared directory is refused once alice wrote that name (If-None-Match)."""
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    shared = f"{HOME}/shared"
    lfn = f"{shared}/race.dat"
    _as(site, monkeypatch, "alice")
    assert FileCatalogClient().createDirectory(shared)["OK"]
    assert FileCatalogClient().changePathMode({shared: 0o775})["OK"]
    _as(site, monkeypatch, "bob")
    hers, his = os.urandom(2000), os.urandom(2000)
    params = _putParams(his)
    url = _url(site, "GW-MOTO", lfn)
    signed = _bulk(_ask("GW-MOTO", "put_object", {url: params}))[0][url]
    _as(site, monkeypatch, "alice")
    path = tmp_path / "race.dat"
    path.write_bytes(hers)
    assert StorageElement("GW-MOTO").putFile({lfn: str(path)})["Value"]["Successful"] == {lfn: 2000}
    late = requests.put(signed, data=his, headers=_signedHeaders(signed, params), timeout=10)
    assert late.status_code == 412 and "PreconditionFailed" in late.text
    assert _stored(site, "GW-MOTO", lfn) == hers
    again = StorageElement("GW-MOTO").putFile({lfn: str(path)})
    assert "exists already; not overwritten" in again["Value"]["Failed"][lfn]


def test_a_multipart_upload_never_replaces_an_object_on_moto(alice, tmp_path):
    lfn = f"{HOME}/trust/big.dat"
    small, big = tmp_path / "small.dat", tmp_path / "big.dat"
    small.write_bytes(b"first")
    big.write_bytes(os.urandom(6 * MiB))
    se = StorageElement("GW-MOTO")
    assert se.putFile({lfn: str(small)})["Value"]["Successful"] == {lfn: 5}
    result = se.putFile({lfn: str(big)})
    assert "exists already; not overwritten" in result["Value"]["Failed"][lfn], result
    assert _stored(alice, "GW-MOTO", lfn) == b"first"
    server, bucket = alice["stores"]["GW-MOTO"]
    assert not server.client().list_multipart_uploads(Bucket=bucket, Prefix=lfn[1:]).get("Uploads")


def test_expiration_is_whole_seconds_and_capped(alice):
    lfn = f"{HOME}/trust/expiry.dat"
    url = _url(alice, "GW-RCLONE", lfn)
    put = {url: _putParams(b"e")}
    yes = _ask("GW-RCLONE", "get_object", [url], True)
    assert not yes["OK"] and "argument 4 should be int, got bool" in yes["Message"]
    tooLong = _ask("GW-RCLONE", "put_object", put, 3601)
    assert not tooLong["OK"] and "expiration must be 1..3600 seconds for put_object" in tooLong["Message"]
    headTooLong = _ask("GW-RCLONE", "head_object", [url], 86400)
    assert not headTooLong["OK"] and "1..3600 seconds for head_object" in headTooLong["Message"]
    access = _bulk(_ask("GW-RCLONE", "get_object", [url], 86400))[0][url]
    assert parse_qs(urlsplit(access).query)["X-Amz-Expires"] == ["86400"]
    shortened = _bulk(_ask("GW-RCLONE", "put_object", put, 3600))[0][url]
    query = parse_qs(urlsplit(shortened).query)
    assert query["X-Amz-Expires"] == ["600"]
    assert set(query["X-Amz-SignedHeaders"][0].split(";")) >= {"content-md5", "content-length", "if-none-match"}
    delete = _bulk(_ask("GW-RCLONE", "delete_object", [url], 3600))[0][url]
    assert parse_qs(urlsplit(delete).query)["X-Amz-Expires"] == ["600"]
    complete = _bulk(_ask("GW-RCLONE", "complete_multipart_upload", {url: {"UploadId": "u"}}, 3600))[0][url]
    assert "if-none-match" in parse_qs(urlsplit(complete).query)["X-Amz-SignedHeaders"][0]


# ---------------------------------------------------------------- 4. storage status for signed writes


def test_a_banned_se_gets_no_write_or_remove_url(alice):
    lfn = f"{HOME}/trust/banned.dat"
    url = _url(alice, "GW-BANNED", lfn)
    for method, urls, reason in (
        ("put_object", {url: _putParams(b"b")}, "banned for write (WriteAccess = Banned)"),
        ("create_multipart_upload", {url: {"Checksum": "00000001"}}, "banned for write"),
        ("delete_object", [url], "banned for remove (RemoveAccess = Banned)"),
    ):
        refused = _ask("GW-BANNED", method, urls)
        assert not refused["OK"] and reason in refused["Message"], (method, refused)
    assert _bulk(_ask("GW-BANNED", "get_object", [url]))[0][url].startswith("http://")
    assert not [r for r in _audited(alice, lfn) if r["method"] != "get_object"]


# ---------------------------------------------------------------- 7. DIRAC 9's put form: a presigned POST


def test_dirac9_put_form_gets_a_presigned_post_pinning_key_and_checksum(alice):
    lfn = f"{HOME}/trust/dirac9.dat"
    data = os.urandom(3000)
    url = _url(alice, "GW-MOTO", lfn)
    form = _bulk(_ask("GW-MOTO", "put_object", {url: {"x-amz-meta-checksum": stringAdler(data)}}, 3600))[0][url]
    assert set(form) == {"url", "fields"}
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert {"key": lfn[1:]} in policy["conditions"]
    assert {"x-amz-meta-checksum": stringAdler(data)} in policy["conditions"]
    assert any(c[0] == "content-length-range" for c in policy["conditions"] if isinstance(c, list))
    posted = requests.post(form["url"], data=form["fields"], files={"file": data}, timeout=10)
    assert posted.status_code in (200, 201, 204), posted.text
    server, bucket = alice["stores"]["GW-MOTO"]
    head = server.client().head_object(Bucket=bucket, Key=lfn[1:])
    assert head["Metadata"]["checksum"] == stringAdler(data) and _stored(alice, "GW-MOTO", lfn) == data


def test_dirac9_put_form_takes_only_the_checksum(alice, monkeypatch):
    lfn = f"{HOME}/trust/dirac9-bad.dat"
    url = _url(alice, "GW-MOTO", lfn)
    for fields, reason in (
        ({"x-amz-meta-checksum": "0000abcd", "acl": "public-read"}, "takes only x-amz-meta-checksum; not acl"),
        ({"x-amz-meta-checksum": "not-hex!"}, "adler32 as x-amz-meta-checksum"),
    ):
        successful, failed = _bulk(_ask("GW-MOTO", "put_object", {url: fields}))
        assert successful == {} and reason in failed[url], failed
    _as(alice, monkeypatch, "bob")
    successful, failed = _bulk(_ask("GW-MOTO", "put_object", {url: {"x-amz-meta-checksum": "0000abcd"}}))
    assert successful == {} and "permission denied" in failed[url]
    assert _stored(alice, "GW-MOTO", lfn) is None


@pytest.mark.parametrize("se", ["GW-MOTO", "GW-RCLONE"])
def test_dirac9_put_form_is_not_signed_for_an_existing_object(alice, tmp_path, se):
    """A form cannot carry If-None-Match: the gateway signs one only while the name is free."""
    lfn = f"{HOME}/trust/dirac9-exists.dat"
    path = tmp_path / "exists.dat"
    path.write_bytes(b"already here")
    assert StorageElement(se).putFile({lfn: str(path)})["Value"]["Successful"]
    url = _url(alice, se, lfn)
    successful, failed = _bulk(_ask(se, "put_object", {url: {"x-amz-meta-checksum": stringAdler(b"other")}}))
    assert successful == {} and "exists already; a form upload would replace it" in failed[url], failed
    assert _stored(alice, se, lfn) == b"already here"


def test_rclone_does_not_take_presigned_posts(alice):
    """What the README says: rclone answers a form upload with an error; nothing is written."""
    lfn = f"{HOME}/trust/dirac9-rclone.dat"
    url = _url(alice, "GW-RCLONE", lfn)
    form = _bulk(_ask("GW-RCLONE", "put_object", {url: {"x-amz-meta-checksum": stringAdler(b"r")}}))[0][url]
    posted = requests.post(form["url"], data=form["fields"], files={"file": b"r"}, timeout=10)
    assert posted.status_code >= 400
    assert _stored(alice, "GW-RCLONE", lfn) is None


# ---------------------------------------------------------------- 5. getDirectory stays in its folder


@pytest.mark.parametrize("badName", ["../../escape.txt", "..", "tab\there.txt"])
def test_get_directory_never_writes_outside_the_destination(site, tmp_path, badName):
    """Keys written by another tool (moto takes any key) must not steer a download out of its folder."""
    server, bucket = site["stores"]["GW-MOTO"]
    directory = f"{HOME}/foreign-{abs(hash(badName))}"
    client = server.client()
    client.put_object(Bucket=bucket, Key=f"{directory[1:]}/ok.txt", Body=b"ok")
    client.put_object(Bucket=bucket, Key=f"{directory[1:]}/{badName}", Body=b"planted")
    destination = tmp_path / "in" / "here"
    destination.mkdir(parents=True)
    result = StorageElement("MOTO-DIRECT").getDirectory(directory, localPath=str(destination))
    assert result["OK"] and directory in result["Value"]["Failed"], result
    reason = result["Value"]["Failed"][directory]
    assert "segment" in reason or "control characters" in reason, reason
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

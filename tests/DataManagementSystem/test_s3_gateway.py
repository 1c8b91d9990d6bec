"""The S3 gateway over real HTTPS RPC, with the file catalog deciding and rclone checking signatures.

One bucket is defined as two SEs: ``S3-DIRECT`` (keys in the client's cfg) and
``S3-INDIRECT`` (no keys for the client; the gateways' cfg has them).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import requests

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from catalog_fixtures import client_environment, gateway_cfgs, systems_cfg  # noqa: E402
from DIRAC.Core.Utilities.Adler import fileAdler  # noqa: E402
from DIRAC.DataManagementSystem.Client.S3GatewayClient import S3GatewayClient  # noqa: E402
from DIRAC.Resources.Storage.StorageElement import StorageElement  # noqa: E402
from rpc_fixtures import ServiceLauncher, free_port  # noqa: E402

HOME = "/testvo/user/a/alice"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(test_ca, rclone_s3_server, tmp_path_factory):
    """A catalog and two gateways (subprocesses); the test process is a client without S3 keys."""
    folder = tmp_path_factory.mktemp("gateway")
    bucket = rclone_s3_server.make_bucket()
    ports = {"catalog": free_port()}
    gatewayPorts = [free_port(), free_port()]
    options = {"Services/S3Gateway/AuditFile": str(folder / "audit.jsonl"), "Services/S3Gateway/MaxExpiration": "86400"}
    systems = systems_cfg(folder, ports["catalog"], gatewayPorts, options, facade=True)
    small = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}
    serverCfg, clientCfg = gateway_cfgs(test_ca, folder, systems, rclone_s3_server, bucket, **small)
    launcher = ServiceLauncher()
    launcher.start("DataManagement/FileCatalog", serverCfg, port=ports["catalog"])
    gateways = [launcher.start("DataManagement/S3Gateway", serverCfg, port=port) for port in gatewayPorts]
    proxies = {user: test_ca.proxy(user, "dirac_user", path=folder / f"{user}.pem") for user in ("alice", "bob")}
    try:
        environment = client_environment(clientCfg, restore=["X509_USER_PROXY"], X509_CERT_DIR=str(test_ca.caDir))
        with environment:
            yield {
                "folder": folder,
                "gateways": gateways,
                "proxies": proxies,
                "server": rclone_s3_server,
                "bucket": bucket,
            }
    finally:
        launcher.stopAll()


@pytest.fixture
def asAlice(gateway, monkeypatch):
    monkeypatch.setenv("X509_USER_PROXY", str(gateway["proxies"]["alice"]))
    return StorageElement("S3-INDIRECT")


def _file(tmp_path, name: str, size: int) -> str:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return str(path)


def _ok(result: dict) -> dict:
    assert result["OK"], result
    assert not result["Value"]["Failed"], result["Value"]["Failed"]
    return result["Value"]["Successful"]


def test_every_operation_through_the_gateway(asAlice, tmp_path):
    lfn = f"{HOME}/gw/f.dat"
    source = _file(tmp_path, "f.dat", 70000)
    assert _ok(asAlice.putFile({lfn: source})) == {lfn: 70000}
    assert _ok(asAlice.exists(lfn)) == {lfn: True}
    assert _ok(asAlice.isFile(lfn)) == {lfn: True}
    meta = _ok(asAlice.getFileMetadata(lfn))[lfn]
    assert (meta["Size"], meta["Checksum"]) == (70000, fileAdler(source))
    assert _ok(asAlice.getFileSize(lfn)) == {lfn: 70000}
    out = tmp_path / "out"
    out.mkdir()
    assert _ok(asAlice.getFile(lfn, localPath=str(out))) == {lfn: 70000}
    assert (out / "f.dat").read_bytes() == Path(source).read_bytes()
    listing = _ok(asAlice.listDirectory(f"{HOME}/gw"))[f"{HOME}/gw"]
    assert list(listing["Files"]) == [lfn]
    assert _ok(asAlice.removeFile(lfn)) == {lfn: True}
    assert _ok(asAlice.exists(lfn)) == {lfn: False}
    direct = StorageElement("S3-DIRECT")
    assert _ok(direct.exists(lfn)) == {lfn: False}


def test_multipart_upload_through_the_gateway(asAlice, tmp_path):
    lfn = f"{HOME}/gw/big.dat"
    source = _file(tmp_path, "big.dat", 11 * MiB + 5)
    assert _ok(asAlice.putFile({lfn: source})) == {lfn: 11 * MiB + 5}
    meta = _ok(StorageElement("S3-DIRECT").getFileMetadata(lfn))[lfn]
    assert meta["Checksum"] == fileAdler(source)
    out = tmp_path / "out"
    out.mkdir()
    assert _ok(asAlice.getFile(lfn, localPath=str(out)))
    assert fileAdler(str(out / "big.dat")) == fileAdler(source)


def test_denied_user_gets_failed_and_no_object_appears(gateway, monkeypatch, tmp_path):
    monkeypatch.setenv("X509_USER_PROXY", str(gateway["proxies"]["bob"]))
    lfn = f"{HOME}/from-bob.dat"
    result = StorageElement("S3-INDIRECT").putFile({lfn: _file(tmp_path, "b", 100)})
    assert result["OK"] and "permission denied" in result["Value"]["Failed"][lfn], result
    assert _ok(StorageElement("S3-DIRECT").exists(lfn)) == {lfn: False}


def _presigned(lfn: str, method: str = "get_object", expiration: int = 3600) -> dict:
    base = StorageElement("S3-INDIRECT").storages[0]._lfnToURL(lfn)
    return S3GatewayClient().createPresignedUrl("S3-INDIRECT", method, [base], expiration), base


def test_signatures_are_checked_by_the_s3_server(asAlice, tmp_path):
    first, second = f"{HOME}/sig/a.dat", f"{HOME}/sig/b.dat"
    _ok(asAlice.putFile({first: _file(tmp_path, "a", 1000), second: _file(tmp_path, "b", 1000)}))
    result, url = _presigned(first)
    signed = _ok(result)[url]
    assert requests.get(signed, timeout=10).status_code == 200
    altered = signed[:-4] + ("0000" if not signed.endswith("0000") else "1111")
    assert requests.get(altered, timeout=10).status_code == 403
    otherKey = signed.replace("/sig/a.dat", "/sig/b.dat")
    assert requests.get(otherKey, timeout=10).status_code == 403
    shortLived, url = _presigned(first, expiration=1)
    time.sleep(2.1)
    expired = requests.get(_ok(shortLived)[url], timeout=10)
    assert expired.status_code in (400, 403) and "AccessDenied" in expired.text, expired.text


def test_bad_requests_get_clear_errors_and_the_service_stays_up(asAlice):
    client = S3GatewayClient()
    _result, url = _presigned(f"{HOME}/x")
    tooLong = client.createPresignedUrl("S3-INDIRECT", "get_object", [url], 86401)
    assert not tooLong["OK"] and "expiration must be 1..86400" in tooLong["Message"]
    unknownSE = client.createPresignedUrl("NOPE", "get_object", [url], 60)
    assert not unknownSE["OK"] and "does not serve SE NOPE" in unknownSE["Message"]
    unknownMethod = client.createPresignedUrl("S3-INDIRECT", "select_object_content", [url], 60)
    assert not unknownMethod["OK"] and "unknown S3 method" in unknownMethod["Message"]
    copy = client.createPresignedUrl("S3-INDIRECT", "copy_object", {url: {"SourceETag": '"x"'}}, 60)
    assert not copy["OK"] and "presignCopy signs it, not createPresignedUrl" in copy["Message"]
    wrongType = client.createPresignedUrl("S3-INDIRECT", "get_object", url, 60)
    assert not wrongType["OK"]
    traversal = client.createPresignedUrl("S3-INDIRECT", "get_object", [url.replace("/x", "/../x")], 60)
    assert traversal["OK"] and traversal["Value"]["Failed"]
    putWithoutChecksum = client.createPresignedUrl("S3-INDIRECT", "put_object", [url], 60)
    assert "Checksum" in putWithoutChecksum["Value"]["Failed"][url]
    assert _ok(client.createPresignedUrl("S3-INDIRECT", "head_object", [url], 60))


def test_access_url_for_external_applications(asAlice, tmp_path):
    lfn = f"{HOME}/share/f.dat"
    source = _file(tmp_path, "f.dat", 5000)
    _ok(asAlice.putFile({lfn: source}))
    url = _ok(asAlice.getURL(lfn, protocol="http"))[lfn]
    assert "X-Amz-Expires=86400" in url
    assert requests.get(url, timeout=10).content == Path(source).read_bytes()


def test_one_gateway_down_every_call_still_answered(gateway, asAlice, tmp_path):
    gateway["gateways"][0].stop()
    for index in range(6):
        lfn = f"{HOME}/failover/f{index}"
        assert _ok(asAlice.putFile({lfn: _file(tmp_path, f"f{index}", 100)})) == {lfn: 100}
        assert _ok(asAlice.exists(lfn)) == {lfn: True}


def test_audit_has_one_line_per_decision_and_no_secret(gateway, asAlice, tmp_path):
    audit = gateway["folder"] / "audit.jsonl"
    before = audit.read_text().count("\n") if audit.exists() else 0
    lfns = [f"{HOME}/audit/f{index}" for index in range(3)]
    _ok(asAlice.putFile({lfn: _file(tmp_path, lfn.rsplit("/", 1)[-1], 10) for lfn in lfns}))
    lines = audit.read_text().splitlines()[before:]
    records = [json.loads(line) for line in lines]
    putRecords = [r for r in records if r["method"] == "put_object"]
    assert sorted(r["lfn"] for r in putRecords) == lfns
    assert all(r["granted"] and r["group"] == "dirac_user" and "alice" in r["dn"] for r in putRecords)
    text = audit.read_text()
    assert gateway["server"].secret_key not in text and gateway["server"].access_key not in text


def _auditRecords(gateway, before: int) -> list[dict]:
    return [json.loads(line) for line in (gateway["folder"] / "audit.jsonl").read_text().splitlines()[before:]]


def test_bulk_remove_through_the_gateway_is_one_signed_delete(gateway, asAlice, tmp_path):
    """Many files: one DeleteObjects signed after the catalog allowed each LFN; the others Failed and kept."""
    direct = StorageElement("S3-DIRECT")
    mine = [f"{HOME}/bulkrm/f{index}" for index in range(5)]
    _ok(asAlice.putFile({lfn: _file(tmp_path, lfn.rsplit("/", 1)[-1], 10) for lfn in mine}))
    bobs = "/testvo/user/b/bob/kept.dat"
    _ok(direct.putFile({bobs: _file(tmp_path, "kept", 10)}))
    audit = gateway["folder"] / "audit.jsonl"
    before = audit.read_text().count("\n")
    result = asAlice.removeFile([*mine, bobs])
    assert result["OK"] and result["Value"]["Successful"] == dict.fromkeys(mine, True), result
    assert "permission" in result["Value"]["Failed"][bobs]
    assert _ok(direct.exists([*mine, bobs])) == {**dict.fromkeys(mine, False), bobs: True}
    deletes = [r for r in _auditRecords(gateway, before) if r["method"] == "delete_objects"]
    assert sorted(r["lfn"] for r in deletes if r["granted"]) == mine
    assert [r["granted"] for r in deletes if not r["granted"]] == [False]
    _ok(direct.removeFile(bobs))


def test_a_signed_delete_removes_exactly_the_keys_it_was_signed_for(gateway, asAlice, tmp_path):
    """Attack: the DeleteObjects URL binds its body; another body (or another MD5) is refused by the S3 server."""
    from DIRAC.Resources.Storage.S3.Methods import bytesContentMD5, deleteObjectsBody

    direct = StorageElement("S3-DIRECT")
    first, second = f"{HOME}/bind/a", f"{HOME}/bind/b"
    _ok(direct.putFile({first: _file(tmp_path, "a", 10), second: _file(tmp_path, "b", 10)}))
    plugin = asAlice.storages[0]
    firstURL = plugin._lfnToURL(first)
    answer = S3GatewayClient()._getRPC().presignDeleteObjects("S3-INDIRECT", [firstURL], 600)
    assert answer["OK"] and answer["Value"]["Successful"] == {firstURL: True}, answer
    url, headers = answer["Value"]["URL"], answer["Value"]["Headers"]
    keys = [plugin.settings.objectKey(first), plugin.settings.objectKey(second)]
    tampered = deleteObjectsBody(keys)
    assert requests.post(url, data=tampered, headers=headers, timeout=10).status_code in (400, 403)
    resigned = {**headers, "Content-MD5": bytesContentMD5(tampered)}
    assert requests.post(url, data=tampered, headers=resigned, timeout=10).status_code == 403
    assert _ok(direct.exists([first, second])) == {first: True, second: True}
    assert requests.post(url, data=deleteObjectsBody(keys[:1]), headers=headers, timeout=10).status_code == 200
    assert _ok(direct.exists([first, second])) == {first: False, second: True}
    client = S3GatewayClient()
    viaCreate = client.createPresignedUrl("S3-INDIRECT", "delete_objects", {firstURL: {"Keys": keys}}, 60)
    assert not viaCreate["OK"] and "presignDeleteObjects signs it" in viaCreate["Message"]
    tooMany = client._getRPC().presignDeleteObjects("S3-INDIRECT", [firstURL] * 1001, 60)
    assert not tooMany["OK"] and "1..1000 URLs" in tooMany["Message"]
    _ok(direct.removeFile(second))


def test_a_bulk_call_starts_on_the_first_urls_while_the_gateway_signs_the_next(asAlice, monkeypatch, tmp_path):
    """URLs are asked in growing batches (MaxWorkers first): the first uploads run before the last batch is signed."""
    storage = asAlice.storages[0]
    monkeypatch.setattr(storage, "maxWorkers", 2)
    events: list[tuple[str, int, float]] = []
    askGateway, upload = storage.signer.authoriseMany, storage._putFile

    def slowBatches(s3Method, items, *args):
        if events:
            time.sleep(0.3)  # a busy gateway: later batches take a while
        answered = askGateway(s3Method, items, *args)
        events.append(("batch", len(items), time.monotonic()))
        return answered

    def recordedUpload(lfn, localFile, size, context):
        events.append(("upload", 1, time.monotonic()))
        return upload(lfn, localFile, size, context)

    monkeypatch.setattr(storage.signer, "authoriseMany", slowBatches)
    monkeypatch.setattr(storage, "_putFile", recordedUpload)
    sources = {f"{HOME}/batches/f{index}": _file(tmp_path, f"f{index}", 100 + index) for index in range(7)}
    assert _ok(asAlice.putFile(sources)) == {lfn: os.path.getsize(path) for lfn, path in sources.items()}
    assert [size for kind, size, _at in events if kind == "batch"] == [2, 4, 1]
    firstUpload = min(at for kind, _size, at in events if kind == "upload")
    assert firstUpload < max(at for kind, _size, at in events if kind == "batch")
    out = tmp_path / "out"
    out.mkdir()
    assert _ok(asAlice.getFile(list(sources), localPath=str(out))) == {
        lfn: os.path.getsize(path) for lfn, path in sources.items()
    }
    _ok(asAlice.removeFile(list(sources)))


def test_a_bug_while_asking_for_urls_fails_each_item_and_hangs_nothing(asAlice, monkeypatch):
    """The URLs are asked in another thread: an exception there becomes each item's Failed reason."""
    storage = asAlice.storages[0]

    def broken(*_args):
        raise RuntimeError("the gateway client broke")

    monkeypatch.setattr(storage.signer, "authoriseMany", broken)
    lfns = [f"{HOME}/broken/f{index}" for index in range(3)]
    result = asAlice.getFileMetadata(lfns)
    assert result["OK"] and set(result["Value"]["Failed"]) == set(lfns), result
    assert all("the gateway client broke" in reason for reason in result["Value"]["Failed"].values())

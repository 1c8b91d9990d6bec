"""Server-side copies signed by the S3 gateway, as a client without keys and as an attacker sees them.

A catalog and a gateway run as services with a test CA; the gateway holds the keys of two buckets
on rclone (``RC-A``, ``RC-B``: rclone checks signatures; their traffic, the gateway's and this
process's, goes through one fault relay) and two on moto (``MO-A``, ``MO-B``), and
two more SEs on the bucket of ``MO-B``: ``MO-BANNED`` (write access banned) and ``MO-OTHER-KEY``
(another access key). This process is a client without keys (alice or bob, group ``dirac_user``);
its destination SEs copy in parts above 5 MiB.
Each test looks at the store itself (boto3 with the keys) to see what was copied, and every
refusal ends by checking that nothing was left at the destination.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "security"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from catalog_site import forge_proxy  # noqa: E402

from catalog_fixtures import client_environment, systems_cfg  # noqa: E402
from DIRAC.Core.Utilities import DErrno  # noqa: E402
from DIRAC.Core.Utilities.Adler import stringAdler  # noqa: E402
from DIRAC.DataManagementSystem.Client.S3GatewayClient import S3GatewayClient  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402
from DIRAC.Resources.Storage.StorageElement import StorageElement  # noqa: E402
from fault_relay import Fault, FaultRelay  # noqa: E402
from rpc_fixtures import ServiceLauncher, free_port, service_cfg  # noqa: E402
from s3_fixtures import merge_cfg, s3_se_cfg  # noqa: E402
from security_fixtures import make_expired_proxy  # noqa: E402

HOME = "/testvo/user/a/alice"
BOB_HOME = "/testvo/user/b/bob"
MiB = 1024 * 1024
PARTS = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}
BANNED = "Resources\n{\n StorageElements\n {\n  MO-BANNED\n  {\n   WriteAccess = Banned\n  }\n }\n}\n"
#: (source SE, destination SE) on each server
PAIRS = {"rclone": ("RC-A", "RC-B"), "moto": ("MO-A", "MO-B")}


@pytest.fixture(scope="module")
def site(test_ca, rclone_s3_server, moto_server, tmp_path_factory):
    """Catalog and gateway services; this process is configured as a client without S3 keys."""
    folder = tmp_path_factory.mktemp("gateway-copy")
    stores = {name: (rclone_s3_server, rclone_s3_server.make_bucket()) for name in ("RC-A", "RC-B")}
    stores.update({name: (moto_server, moto_server.make_bucket()) for name in ("MO-A", "MO-B")})
    stores["MO-BANNED"] = stores["MO-OTHER-KEY"] = stores["MO-B"]
    relay = FaultRelay(rclone_s3_server.host, rclone_s3_server.port).start()  # the rclone SEs' traffic, both sides
    ports = {name: relay.port if server is rclone_s3_server else server.port for name, (server, _b) in stores.items()}
    catalogPort, gatewayPort = free_port(), free_port()
    options = {"Services/S3Gateway/AuditFile": str(folder / "audit.jsonl")}
    systems = systems_cfg(folder, catalogPort, [gatewayPort], options, facade=True)
    serverSEs = [s3_se_cfg(name, server, bucket, Port=ports[name]) for name, (server, bucket) in stores.items()]
    serverSEs.append(s3_se_cfg("MO-OTHER-KEY", moto_server, stores["MO-B"][1], Aws_access_key_id="another-key"))
    clientSEs = [
        s3_se_cfg(name, server, bucket, with_keys=False, Port=ports[name], **PARTS)
        for name, (server, bucket) in stores.items()
    ]
    serverCfg, clientCfg = folder / "server.cfg", folder / "client.cfg"
    serverCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *serverSEs, BANNED)))
    clientCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *clientSEs, BANNED)))
    launcher = ServiceLauncher()
    try:
        launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
        launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
        proxies = {user: test_ca.proxy(user, "dirac_user", path=folder / f"{user}.pem") for user in ("alice", "bob")}
        proxies["alice-forged-admin"] = forge_proxy(proxies["alice"], folder / "alice-forged.pem", "dirac_admin")
        alice = test_ca.users["alice"]
        proxies["alice-expired"] = make_expired_proxy(alice.cert, alice.key, folder / "alice-expired.pem")
        environment = client_environment(clientCfg, restore=["X509_USER_PROXY"], X509_CERT_DIR=str(test_ca.caDir))
        with environment:
            yield {"folder": folder, "stores": stores, "ports": ports, "relay": relay, "proxies": proxies}
    finally:
        launcher.stopAll()
        relay.stop()


@pytest.fixture
def act(site, monkeypatch):
    """``act(user)``: from now on this process presents ``user``'s proxy (alice to start with)."""

    def become(user: str) -> None:
        monkeypatch.setenv("X509_USER_PROXY", str(site["proxies"][user]))

    become("alice")
    return become


@pytest.fixture(params=["moto", "rclone"])
def pair(request) -> tuple[str, str]:
    return PAIRS[request.param]


def _url(site, se: str, lfn: str) -> str:
    server, bucket = site["stores"][se]
    return f"s3://{server.host}:{site['ports'][se]}/{bucket}{lfn}"


def _stored(site, se: str, lfn: str) -> bytes | None:
    server, bucket = site["stores"][se]
    client = server.client()
    try:
        return client.get_object(Bucket=bucket, Key=lfn[1:])["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def _nothingAt(site, se: str, lfn: str) -> None:
    """No object and no unfinished multipart upload of ``lfn`` at ``se``."""
    server, bucket = site["stores"][se]
    client = server.client()
    assert _stored(site, se, lfn) is None
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=lfn[1:]).get("Uploads", [])
    except client.exceptions.NoSuchUpload:  # rclone keeps no list
        uploads = []
    assert not uploads, uploads


def _putAndRegister(site, se: str, lfn: str, data: bytes, mode: int | None = None) -> dict:
    """As the current user: upload through the gateway, register, optionally chmod; the catalog entry."""
    path = site["folder"] / uuid.uuid4().hex
    path.write_bytes(data)
    assert StorageElement(se).putFile({lfn: str(path)})["Value"]["Successful"] == {lfn: len(data)}
    entry = {"PFN": _url(site, se, lfn), "Size": len(data), "SE": se, "GUID": str(uuid.uuid4())}
    added = FileCatalogClient().addFile({lfn: {**entry, "Checksum": stringAdler(data)}})
    assert added["OK"] and not added["Value"]["Failed"], added
    if mode is not None:
        assert FileCatalogClient().changePathMode({lfn: mode})["OK"]
    return {"Size": len(data), "Checksum": stringAdler(data)}


def _copy(source: str, destination: str, items: dict) -> dict:
    """Copy through the client's keyless plugins: {lfn: S_OK(size) or S_ERROR}."""
    sourcePlugin, destinationPlugin = StorageElement(source).storages[0], StorageElement(destination).storages[0]
    assert destinationPlugin.canCopyServerSideFrom(sourcePlugin)
    return destinationPlugin.copyServerSide(sourcePlugin, items)


def _failed(result: dict, errno: int, words: str) -> None:
    assert not result["OK"], result
    assert DErrno.cmpError(result, errno), result
    assert words in result["Message"], result["Message"]


def _lfn(name: str, home: str = HOME) -> str:
    return f"{home}/copy/{uuid.uuid4().hex[:8]}-{name}"


# ---------------------------------------------------------------- copies the catalog allows


def test_alice_copies_her_file_between_two_buckets_through_the_gateway(site, act, pair):
    source, destination = pair
    lfn, data = _lfn("small.dat"), os.urandom(200 * 1024)
    entry = _putAndRegister(site, source, lfn, data)
    assert _copy(source, destination, {lfn: entry}) == {lfn: {"OK": True, "Value": len(data)}}
    assert _stored(site, destination, lfn) == data
    lines = (site["folder"] / "audit.jsonl").read_text().splitlines()
    copies = [
        record for record in map(json.loads, lines) if record.get("lfn") == lfn and record["method"] == "copy_object"
    ]
    assert [(r["se"], r["source"], r["granted"], r["expiration"]) for r in copies] == [(destination, source, True, 600)]


def test_a_source_changed_after_the_clients_head_is_not_signed(site, act, monkeypatch):
    """The client saw one ETag; the source is overwritten before the gateway looks: no URL, nothing copied."""
    lfn, data = _lfn("changing.dat"), os.urandom(3000)
    entry = _putAndRegister(site, "RC-A", lfn, data)
    server, bucket = site["stores"]["RC-A"]
    plugin = StorageElement("RC-B").storages[0]
    authorise = plugin.signer.authoriseCopies

    def changing(s3Method, sourceSE, items):
        head = server.client().head_object(Bucket=bucket, Key=lfn[1:])
        server.client().put_object(Bucket=bucket, Key=lfn[1:], Body=data[::-1], Metadata=head["Metadata"])
        return authorise(s3Method, sourceSE, items)

    monkeypatch.setattr(plugin.signer, "authoriseCopies", changing)
    result = plugin.copyServerSide(StorageElement("RC-A").storages[0], {lfn: entry})[lfn]
    assert not result["OK"] and "it changed since the caller looked" in result["Message"], result
    _nothingAt(site, "RC-B", lfn)


def test_a_bulk_copy_asks_the_gateway_three_times_whatever_the_number_of_files(site, act, monkeypatch):
    """The sources' HEADs, the copies and the destinations' HEADs are each asked for all files at once."""
    from DIRAC.Resources.Storage.S3 import Signers

    lfns = [_lfn(f"bulk{number}.dat") for number in range(6)]
    items = {lfn: _putAndRegister(site, "MO-A", lfn, os.urandom(1000 + number)) for number, lfn in enumerate(lfns)}
    asked: list[str] = []

    class CountingRPC(Signers.RPCClient):
        def __getattr__(self, name):
            asked.append(name)
            return super().__getattr__(name)

    monkeypatch.setattr(Signers, "RPCClient", CountingRPC)
    result = _copy("MO-A", "MO-B", items)
    assert result == {lfn: {"OK": True, "Value": item["Size"]} for lfn, item in items.items()}, result
    assert sorted(asked) == ["createPresignedUrl", "createPresignedUrl", "presignCopy"], asked
    assert all(_stored(site, "MO-B", lfn) == _stored(site, "MO-A", lfn) for lfn in lfns)


def test_the_part_copies_of_a_file_are_signed_in_one_gateway_call(site, act, monkeypatch):
    from DIRAC.Resources.Storage.S3 import Signers

    lfn, data = _lfn("parts.dat"), os.urandom(11 * MiB)
    entry = _putAndRegister(site, "MO-A", lfn, data)
    asked: list[str] = []

    class CountingRPC(Signers.RPCClient):
        def __getattr__(self, name):
            asked.append(name)
            return super().__getattr__(name)

    monkeypatch.setattr(Signers, "RPCClient", CountingRPC)
    assert _copy("MO-A", "MO-B", {lfn: entry}) == {lfn: {"OK": True, "Value": len(data)}}
    assert asked.count("presignCopy") == 1, asked
    server, bucket = site["stores"]["MO-B"]
    assert server.client().head_object(Bucket=bucket, Key=lfn[1:])["ETag"].endswith('-3"')
    assert _stored(site, "MO-B", lfn) == data


def test_a_big_file_is_copied_in_parts_through_the_gateway_on_moto_rclone_says_stream_it(site, act, pair):
    source, destination = pair
    lfn, data = _lfn("big.dat"), os.urandom(6 * MiB)
    entry = _putAndRegister(site, source, lfn, data)
    result = _copy(source, destination, {lfn: entry})[lfn]
    if source.startswith("RC"):
        _failed(result, DErrno.EPROTONOSUPPORT, "without an ETag")
        _nothingAt(site, destination, lfn)
    else:
        assert result == {"OK": True, "Value": len(data)}, result
        assert _stored(site, destination, lfn) == data
        _nothingAt(site, destination, f"{lfn}.none")


def test_the_copy_url_pins_source_etag_metadata_and_no_overwrite_and_lives_minutes(site, act):
    lfn, data = _lfn("pinned.dat"), b"pinned"
    _putAndRegister(site, "RC-A", lfn, data)
    etag = site["stores"]["RC-A"][0].client().head_object(Bucket=site["stores"]["RC-A"][1], Key=lfn[1:])["ETag"]
    url = _url(site, "RC-B", lfn)
    answer = S3GatewayClient().presignCopy("RC-B", "RC-A", "copy_object", {url: {"SourceETag": etag}}, 3600)
    assert answer["OK"] and url in answer["Value"]["Successful"], answer
    query = parse_qs(urlsplit(answer["Value"]["Successful"][url]).query)
    assert query["X-Amz-Expires"] == ["600"]
    signed = set(query["X-Amz-SignedHeaders"][0].split(";"))
    assert {"x-amz-copy-source", "x-amz-copy-source-if-match", "x-amz-metadata-directive", "if-none-match"} <= signed
    assert set(answer["Value"]["CleanUp"][url]) == {"Expiration", "head_object", "delete_object"}
    _nothingAt(site, "RC-B", lfn)


# ---------------------------------------------------------------- refusals


def test_bob_may_not_copy_alices_private_file(site, act):
    lfn = _lfn("private.dat")
    entry = _putAndRegister(site, "MO-A", lfn, b"alice only", mode=0o600)
    server, bucket = site["stores"]["MO-A"]
    etag = server.client().head_object(Bucket=bucket, Key=lfn[1:])["ETag"]
    act("bob")
    _failed(_copy("MO-A", "MO-B", {lfn: entry})[lfn], DErrno.EACCES, "permission denied")
    url = _url(site, "MO-B", lfn)
    asked = S3GatewayClient().presignCopy("MO-B", "MO-A", "copy_object", {url: {"SourceETag": etag}}, 600)
    assert "cannot read the source: permission denied" in asked["Value"]["Failed"][url], asked
    _nothingAt(site, "MO-B", lfn)


def test_bob_may_not_copy_into_a_directory_he_may_not_write(site, act):
    lfn = _lfn("public.dat")
    entry = _putAndRegister(site, "RC-A", lfn, b"anyone may read this")
    act("bob")
    assert StorageElement("RC-A").getFileMetadata(lfn)["Value"]["Successful"], "bob may read it"
    _failed(_copy("RC-A", "RC-B", {lfn: entry})[lfn], DErrno.EACCES, "cannot write the destination: permission")
    _nothingAt(site, "RC-B", lfn)


def test_a_refusal_reads_the_same_whether_or_not_the_source_is_there(site, act):
    private = _lfn("closed")
    _putAndRegister(site, "MO-A", f"{private}/inside.dat", b"x")
    assert FileCatalogClient().changePathMode({private: 0o700})["OK"]
    site["stores"]["MO-A"][0].client().put_object(Bucket=site["stores"]["MO-A"][1], Key=f"{private[1:]}/dark.dat")
    act("bob")
    names = ("inside.dat", "dark.dat", "absent.dat")
    urls = {name: _url(site, "MO-B", f"{private}/{name}") for name in names}
    params = {url: {"SourceETag": '"0123456789abcdef0123456789abcdef"'} for url in urls.values()}
    answer = S3GatewayClient().presignCopy("MO-B", "MO-A", "copy_object", params, 600)
    assert answer["OK"] and not answer["Value"]["Successful"], answer
    reasons = {name: answer["Value"]["Failed"][url].replace(name, "NAME") for name, url in urls.items()}
    assert len(set(reasons.values())) == 1, reasons
    for name in names:
        _nothingAt(site, "MO-B", f"{private}/{name}")


@pytest.mark.parametrize("who", ["alice-forged-admin", "alice-expired"])
def test_a_forged_or_expired_proxy_gets_no_copy_of_bobs_private_file(site, act, who):
    act("bob")
    lfn = _lfn("vault.dat", BOB_HOME)
    entry = _putAndRegister(site, "MO-A", lfn, b"bob only", mode=0o600)
    act(who)
    result = _copy("MO-A", "MO-B", {lfn: entry})[lfn]
    assert not result["OK"], result
    _nothingAt(site, "MO-B", lfn)


def test_the_gateway_signs_only_the_etag_it_sees_and_names_the_source_itself(site, act):
    lfn = _lfn("etag.dat")
    _putAndRegister(site, "MO-A", lfn, b"the source")
    url = _url(site, "MO-B", lfn)
    gateway = S3GatewayClient()
    stale = gateway.presignCopy("MO-B", "MO-A", "copy_object", {url: {"SourceETag": '"0' * 16 + '"'}}, 600)
    assert "it changed since the caller looked" in stale["Value"]["Failed"][url], stale
    _, otherBucket = site["stores"]["MO-A"]
    for smuggled in ({"SourceBucket": otherBucket}, {"SourceKey": f"{BOB_HOME[1:]}/x"}):
        answer = gateway.presignCopy("MO-B", "MO-A", "copy_object", {url: {"SourceETag": '"x"', **smuggled}}, 600)
        assert "the gateway names the copy's source itself" in answer["Value"]["Failed"][url], answer
    etag = site["stores"]["MO-A"][0].client().head_object(Bucket=otherBucket, Key=lfn[1:])["ETag"]
    for parts, words in (
        ({"1": "bytes=0-9", "2": "bytes=9-0"}, "upload_part_copy needs SourceRange"),
        ({"one": "bytes=0-9"}, "Parts names part numbers, not 'one'"),
        ({}, "Parts must map 1..1000 part numbers"),
    ):
        asked = {url: {"SourceETag": etag, "UploadId": "upload", "Parts": parts}}
        answer = gateway.presignCopy("MO-B", "MO-A", "upload_part_copy", asked, 600)
        assert answer["OK"] and not answer["Value"]["Successful"], answer
        assert words in answer["Value"]["Failed"][url], answer
    wrongMethod = gateway.presignCopy("MO-B", "MO-A", "put_object", {url: {}}, 600)
    assert not wrongMethod["OK"] and "signs copy_object and upload_part_copy" in wrongMethod["Message"]
    _nothingAt(site, "MO-B", lfn)


@pytest.mark.parametrize("size", [20, 6 * MiB + 1], ids=["whole", "parts"])
def test_a_gateway_signing_the_ses_with_other_keys_makes_the_client_stream(site, act, size):
    """Both SEs look alike to the client (one service, no keys); the gateway holds different keys
    for them: the whole call is refused and the copy answers EPROTONOSUPPORT, nothing left (no
    open multipart upload either, for a file copied in parts)."""
    lfn = _lfn(f"other-key-{size}.dat")
    entry = _putAndRegister(site, "MO-A", lfn, os.urandom(size))
    _failed(_copy("MO-A", "MO-OTHER-KEY", {lfn: entry})[lfn], DErrno.EPROTONOSUPPORT, "not on one S3 service")
    _nothingAt(site, "MO-OTHER-KEY", lfn)


def test_no_copy_between_services_nor_into_a_banned_se(site, act):
    lfn = _lfn("across.dat")
    entry = _putAndRegister(site, "MO-A", lfn, b"across")
    url = {_url(site, "RC-B", lfn): {"SourceETag": '"x"'}}
    across = S3GatewayClient().presignCopy("RC-B", "MO-A", "copy_object", url, 600)
    assert not across["OK"] and DErrno.cmpError(across, DErrno.EWRONGSE), across
    assert "not on one S3 service" in across["Message"]
    unknown = S3GatewayClient().presignCopy("RC-B", "NOT-SERVED", "copy_object", url, 600)
    assert not unknown["OK"] and DErrno.cmpError(unknown, DErrno.EWRONGSE), unknown
    banned = _copy("MO-A", "MO-BANNED", {lfn: entry})[lfn]
    assert not banned["OK"] and "banned for write" in banned["Message"], banned
    _nothingAt(site, "MO-BANNED", lfn)


# ---------------------------------------------------------------- a signed URL copies its source only


def test_a_url_signed_for_one_source_cannot_copy_another_on_rclone(site, act):
    """rclone checks signatures: a copy URL with its x-amz-copy-source changed is refused, the right one works."""
    lfn, other = _lfn("mine.dat"), _lfn("other.dat")
    _putAndRegister(site, "RC-A", lfn, b"the file signed for")
    _putAndRegister(site, "RC-A", other, b"another file")
    server, sourceBucket = site["stores"]["RC-A"]
    etag = server.client().head_object(Bucket=sourceBucket, Key=lfn[1:])["ETag"]
    url = _url(site, "RC-B", lfn)
    answer = S3GatewayClient().presignCopy("RC-B", "RC-A", "copy_object", {url: {"SourceETag": etag}}, 600)
    signedURL = answer["Value"]["Successful"][url]
    headers = {
        "x-amz-copy-source": f"/{sourceBucket}{lfn}",
        "x-amz-copy-source-if-match": etag,
        "x-amz-metadata-directive": "COPY",
        "If-None-Match": "*",
    }
    for name, value in (("x-amz-copy-source", f"/{sourceBucket}{other}"), ("x-amz-copy-source-if-match", "*")):
        tampered = requests.put(signedURL, headers={**headers, name: value}, timeout=10)
        assert tampered.status_code == 403 and "SignatureDoesNotMatch" in tampered.text, (name, tampered.text)
        _nothingAt(site, "RC-B", lfn)
    assert requests.put(signedURL, headers=headers, timeout=10).status_code == 200
    assert _stored(site, "RC-B", lfn) == b"the file signed for"


# ---------------------------------------------------------------- faults on a copy the gateway signed


@pytest.mark.parametrize("fault", ["lost", "refused"])
def test_a_gateway_copy_whose_answer_is_lost_is_verified_one_refused_leaves_nothing(site, act, fault):
    """rclone applies the copy and every answer is lost, resends included (kept once the gateway's HEAD
    URL verifies it), or every attempt gets a 500 before it is applied (nothing at the destination)."""
    lfn, data = _lfn(f"{fault}.dat"), os.urandom(5000)
    entry = _putAndRegister(site, "RC-A", lfn, data)
    relay: FaultRelay = site["relay"]
    path = f"^/{site['stores']['RC-B'][1]}/"
    injected = relay.add(
        Fault("lose", method="PUT", path=path, times=10)
        if fault == "lost"
        else Fault("answer", status=500, s3Code="InternalError", method="PUT", path=path, times=10)
    )
    try:
        result = _copy("RC-A", "RC-B", {lfn: entry})[lfn]
    finally:
        relay.clear()
    # the first attempt and the client's 3 retries, plus for "lost" the free resend on a new connection
    # once a kept-alive one closed without an answer
    assert injected.fired == (5 if fault == "lost" else 4), injected.fired
    if fault == "lost":
        assert result == {"OK": True, "Value": len(data)}, result
        assert _stored(site, "RC-B", lfn) == data
    else:
        assert not result["OK"] and "InternalError" in result["Message"], result
        assert "nothing is at the destination" in result["Message"]
        _nothingAt(site, "RC-B", lfn)

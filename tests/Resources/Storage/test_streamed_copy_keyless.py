"""Streamed copies by a user without S3 keys: every S3 request is a URL from the S3Gateway.

A catalog and a gateway run as services (test CA, alice's proxy); the gateway holds the keys
of GW-RCLONE and GW-MOTO, each store behind its own fault relay; this process does not. The
source is read with the gateway's GET URLs (each range pinned by the ETag), the destination
written with its PUT / multipart URLs (size, Content-MD5, checksum metadata and
``If-None-Match`` pinned). The gateway refuses a source the caller may not read and a
destination the caller may not write: nothing is then written.
"""

from __future__ import annotations

import os

import pytest

from catalog_fixtures import client_environment, systems_cfg
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import stringAdler
from DIRAC.Resources.Storage.StorageElement import StorageElement
from fault_relay import Fault, FaultRelay
from rpc_fixtures import ServiceLauncher, free_port, service_cfg
from s3_fixtures import corrupt_object, file_se_cfg, merge_cfg, s3_se_cfg, se_cfg

MiB = 1024 * 1024
HOME = "/testvo/user/a/alice/streamed"
SMALL = 300 * 1024 + 5
BIG = 12 * MiB + 321
SMALL_PARTS = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}
BANNED = se_cfg("GW-NOWRITE", {"WriteAccess": "Banned"}, {})


@pytest.fixture(scope="module")
def site(test_ca, rclone_s3_server, moto_server, tmp_path_factory):
    """Catalog and gateway services for GW-RCLONE and GW-MOTO (each behind a relay), and a File SE."""
    folder = tmp_path_factory.mktemp("streamed-keyless")
    stores = {"GW-RCLONE": rclone_s3_server, "GW-MOTO": moto_server}
    relays = {name: FaultRelay(server.host, server.port).start() for name, server in stores.items()}
    buckets = {name: server.make_bucket() for name, server in stores.items()}
    catalogPort, gatewayPort = free_port(), free_port()
    systems = systems_cfg(folder, catalogPort, [gatewayPort], facade=True)
    serverSEs, clientSEs = [], []
    for name, server in stores.items():
        through = {"Port": relays[name].port, "ReadTimeout": 1, **SMALL_PARTS}
        serverSEs.append(s3_se_cfg(name, server, buckets[name], **through))
        clientSEs.append(s3_se_cfg(name, server, buckets[name], with_keys=False, **through))
    # the gateway's configuration bans writing to GW-NOWRITE; this client's does not know it
    buckets["GW-NOWRITE"] = moto_server.make_bucket()
    noWrite = {"Port": relays["GW-MOTO"].port, **SMALL_PARTS}
    serverSEs.append(merge_cfg(s3_se_cfg("GW-NOWRITE", moto_server, buckets["GW-NOWRITE"], **noWrite), BANNED))
    clientSEs.append(s3_se_cfg("GW-NOWRITE", moto_server, buckets["GW-NOWRITE"], with_keys=False, **noWrite))
    stores["GW-NOWRITE"] = moto_server
    (folder / "file-se").mkdir()
    clientSEs.append(file_se_cfg("FILE-SE", folder / "file-se"))
    serverCfg, clientCfg = folder / "server.cfg", folder / "client.cfg"
    serverCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *serverSEs)))
    clientCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *clientSEs)))
    launcher = ServiceLauncher()
    try:
        launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
        launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
        proxy = test_ca.proxy("alice", "dirac_user", path=folder / "alice.pem")
        with client_environment(clientCfg, X509_CERT_DIR=str(test_ca.caDir), X509_USER_PROXY=str(proxy)):
            yield {"relays": relays, "stores": stores, "buckets": buckets, "fileFolder": folder / "file-se"}
    finally:
        launcher.stopAll()
        for relay in relays.values():
            relay.stop()


def plugin(seName: str):
    se = StorageElement(seName)
    assert se.valid, se.errorReason
    return se.storages[0]


def stored(site, seName: str, lfn: str) -> bytes | None:
    """The bytes ``lfn`` has on an SE, read with the keys (S3) or from the folder (File)."""
    if seName == "FILE-SE":
        path = site["fileFolder"] / lfn.lstrip("/")
        return path.read_bytes() if path.exists() else None
    client = site["stores"][seName].client()
    try:
        return client.get_object(Bucket=site["buckets"][seName], Key=lfn.lstrip("/"))["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def unfinished(site, seName: str) -> list:
    if seName == "FILE-SE":
        return []
    client = site["stores"][seName].client()
    try:
        return client.list_multipart_uploads(Bucket=site["buckets"][seName]).get("Uploads", [])
    except client.exceptions.NoSuchUpload:
        return []


def putSource(seName: str, lfn: str, data: bytes, tmp_path) -> dict:
    """Put ``data`` on a source SE (through the gateway); the catalog entry it would have."""
    local = tmp_path / "source.dat"
    local.write_bytes(data)
    result = StorageElement(seName).putFile({lfn: str(local)})
    assert result["OK"] and lfn in result["Value"]["Successful"], result
    return {lfn: {"Size": len(data), "Checksum": stringAdler(data)}}


def remove(site, lfn: str) -> None:
    for seName in site["stores"]:
        site["stores"][seName].client().delete_object(Bucket=site["buckets"][seName], Key=lfn.lstrip("/"))
    path = site["fileFolder"] / lfn.lstrip("/")
    if path.exists():
        path.unlink()


PAIRS = [("GW-RCLONE", "GW-MOTO"), ("GW-MOTO", "GW-RCLONE"), ("GW-RCLONE", "FILE-SE"), ("FILE-SE", "GW-MOTO")]


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
@pytest.mark.parametrize(("sourceName", "destinationName"), PAIRS, ids=["->".join(pair) for pair in PAIRS])
def test_keyless_copy_is_byte_exact_with_its_checksum(site, relay_of, tmp_path, sourceName, destinationName, size):
    lfn = f"{HOME}/{sourceName}-{destinationName}-{size}.dat"
    data = os.urandom(size)
    items = putSource(sourceName, lfn, data, tmp_path)
    try:
        result = plugin(destinationName).copyStreamed(plugin(sourceName), items)
        assert result == {lfn: {"OK": True, "Value": size}}, result
        assert stored(site, destinationName, lfn) == data
        destination = StorageElement(destinationName).getFileMetadata(lfn)["Value"]["Successful"][lfn]
        assert destination["Checksum"] == items[lfn]["Checksum"]
        assert unfinished(site, destinationName) == []
    finally:
        remove(site, lfn)


def test_keyless_range_reads_are_resumed_with_the_gateways_url(site, relay_of, tmp_path):
    lfn = f"{HOME}/resumed.dat"
    data = os.urandom(BIG)
    items = putSource("GW-RCLONE", lfn, data, tmp_path)
    source = relay_of("GW-RCLONE")
    reset = source.add(Fault("reset", method="GET", after=100 * 1024, skip=2))
    try:
        result = plugin("GW-MOTO").copyStreamed(plugin("GW-RCLONE"), items)
        assert result == {lfn: {"OK": True, "Value": BIG}}, result
        assert reset.fired == 1
        assert stored(site, "GW-MOTO", lfn) == data
    finally:
        remove(site, lfn)


def test_keyless_corrupt_source_leaves_nothing(site, relay_of, tmp_path):
    lfn = f"{HOME}/corrupt.dat"
    items = putSource("GW-RCLONE", lfn, os.urandom(BIG), tmp_path)
    corrupt_object(site["stores"]["GW-RCLONE"], site["buckets"]["GW-RCLONE"], lfn.lstrip("/"), offset=BIG - 1)
    try:
        result = plugin("GW-MOTO").copyStreamed(plugin("GW-RCLONE"), items)[lfn]
        assert not result["OK"] and result["Errno"] == DErrno.EBADCKS, result
        assert "the multipart upload was aborted" in result["Message"], result
        assert stored(site, "GW-MOTO", lfn) is None
        assert unfinished(site, "GW-MOTO") == []
    finally:
        remove(site, lfn)


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
def test_keyless_destination_that_exists_is_not_overwritten(site, relay_of, tmp_path, size):
    """The gateway's PUT and completion URLs carry If-None-Match: * (moto enforces it): the other object stays."""
    lfn = f"{HOME}/exists-{size}.dat"
    items = putSource("GW-RCLONE", lfn, os.urandom(size), tmp_path)
    site["stores"]["GW-MOTO"].client().put_object(Bucket=site["buckets"]["GW-MOTO"], Key=lfn.lstrip("/"), Body=b"x")
    try:
        result = plugin("GW-MOTO").copyStreamed(plugin("GW-RCLONE"), items)[lfn]
        outcome = "nothing was written" if size == SMALL else "the multipart upload was aborted"
        assert not result["OK"] and "exists already" in result["Message"] and outcome in result["Message"], result
        assert stored(site, "GW-MOTO", lfn) == b"x"
        assert unfinished(site, "GW-MOTO") == []
    finally:
        remove(site, lfn)


def test_gateway_refuses_a_source_the_caller_may_not_read(site, relay_of, tmp_path):
    """bob's directory: alice may not read there; the gateway signs no GET and nothing is written."""
    lfn = "/testvo/user/b/bob/secret.dat"
    data = b"bob's data" * 100
    site["stores"]["GW-RCLONE"].client().put_object(Bucket=site["buckets"]["GW-RCLONE"], Key=lfn.lstrip("/"), Body=data)
    try:
        items = {lfn: {"Size": len(data), "Checksum": stringAdler(data)}}
        result = plugin("GW-MOTO").copyStreamed(plugin("GW-RCLONE"), items)[lfn]
        assert not result["OK"] and result["Errno"] == DErrno.EACCES, result
        assert "nothing was written" in result["Message"], result
        assert stored(site, "GW-MOTO", lfn) is None
        assert not [request for request in relay_of("GW-RCLONE").requests if request.method == "GET"]
    finally:
        remove(site, lfn)


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
def test_gateway_refuses_a_destination_the_caller_may_not_write(site, relay_of, tmp_path, size):
    """The gateway's SE bans writing to GW-NOWRITE: it signs no PUT nor multipart upload; nothing is written."""
    lfn = f"{HOME}/not-written-{size}.dat"
    items = putSource("GW-RCLONE", lfn, os.urandom(size), tmp_path)
    try:
        result = plugin("GW-NOWRITE").copyStreamed(plugin("GW-RCLONE"), items)[lfn]
        assert not result["OK"] and "WriteAccess = Banned" in result["Message"], result
        assert "nothing was written" in result["Message"], result
        assert stored(site, "GW-NOWRITE", lfn) is None
        assert unfinished(site, "GW-NOWRITE") == []
    finally:
        remove(site, lfn)

"""Replication by a user without S3 keys: every S3 request is signed by the S3 gateway.

Real processes: a FileCatalog service and an S3Gateway (``dirac-service``) holding the
keys of S3-K1 and S3-K2 (two buckets on rclone, checking signatures) and S3-M (moto);
this process is alice with a proxy and no keys. Two SEs of one service copy
server-side (the gateway signs the copy after the catalog allows it); between
services, and from S3 to a local File SE, the copy is streamed through presigned
reads and writes. After each test the buckets, the File SE and the catalog agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog_fixtures import client_environment, systems_cfg
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.Resources.Storage.CopyWays import SERVER_SIDE, STREAMED
from rpc_fixtures import ServiceLauncher, free_port, service_cfg
from s3_fixtures import file_se_cfg, merge_cfg, s3_se_cfg

HOME = "/testvo/user/a/alice/keyless-copy"
ALICE = {"DN": "/CN=alice", "username": "alice", "group": "dirac_user", "properties": ["NormalUser"], "VO": "testvo"}
MIB5 = 5 * 1024 * 1024


@pytest.fixture
def keyless(test_ca, rclone_s3_server, moto_server, tmp_path):
    """(buckets {se: (server, bucket)}, File SE root, catalog DB file) with the services running."""
    buckets = {
        "S3-K1": (rclone_s3_server, rclone_s3_server.make_bucket()),
        "S3-K2": (rclone_s3_server, rclone_s3_server.make_bucket()),
        "S3-M": (moto_server, moto_server.make_bucket()),
    }
    fileRoot = tmp_path / "file-a"
    fileRoot.mkdir()
    catalogPort, gatewayPort = free_port(), free_port()
    systems = systems_cfg(tmp_path, catalogPort, [gatewayPort], facade=True)
    small = {"MultipartThreshold": MIB5, "MultipartChunkSize": MIB5}

    def ses(withKeys: bool) -> list[str]:
        return [s3_se_cfg(name, srv, bucket, with_keys=withKeys, **small) for name, (srv, bucket) in buckets.items()]

    serverCfg, clientCfg = tmp_path / "server.cfg", tmp_path / "client.cfg"
    serverCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *ses(True))))
    clientCfg.write_text(
        service_cfg(test_ca, {}, extra=merge_cfg(systems, *ses(False), file_se_cfg("FILE-A", fileRoot)))
    )
    launcher = ServiceLauncher()
    launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
    launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
    proxy = test_ca.proxy("alice", "dirac_user", path=tmp_path / "alice.pem")
    try:
        with client_environment(clientCfg, X509_CERT_DIR=str(test_ca.caDir), X509_USER_PROXY=str(proxy)):
            yield buckets, fileRoot, tmp_path / "fc.sqlite"
    finally:
        launcher.stopAll()


def _assertAgreement(buckets: dict, fileRoot: Path, dbFile: Path) -> None:
    db = FileCatalogDB(f"sqlite:///{dbFile}")
    try:
        listing = db.listDirectory(HOME, ALICE, True)["Value"]["Successful"].get(HOME, {"Files": {}})["Files"]
    finally:
        db.close()
    for seName, (server, bucket) in buckets.items():
        stored = {"/" + item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])}
        assert stored == {lfn for lfn, item in listing.items() if seName in item["Replicas"]}, seName
    onDisk = {"/" + str(path.relative_to(fileRoot)) for path in fileRoot.rglob("*") if path.is_file()}
    assert onDisk == {lfn for lfn, item in listing.items() if "FILE-A" in item["Replicas"]}


@pytest.mark.parametrize(
    ("destSE", "size", "way"),
    [
        ("S3-K2", 70000, SERVER_SIDE),
        ("S3-K2", MIB5 + 999, STREAMED),  # rclone cannot copy parts: streamed through the gateway's URLs
        ("S3-M", 70000, STREAMED),
        ("FILE-A", MIB5 + 999, STREAMED),
    ],
    ids=["one-service", "one-service-in-parts", "two-services", "s3-to-file"],
)
def test_keyless_replication_takes_each_way_through_the_gateway(keyless, destSE, size, way):
    buckets, fileRoot, dbFile = keyless
    lfn = f"{HOME}/f.dat"
    local = fileRoot.parent / "src.dat"
    local.write_bytes((b"keyless copy " * (size // 13 + 1))[:size])
    manager = DataManager()
    assert lfn in manager.putAndRegister(lfn, str(local), "S3-K1")["Value"]["Successful"]
    done = manager.replicateAndRegister(lfn, destSE)
    assert done["OK"] and lfn in done["Value"]["Successful"], done
    assert done["Value"]["Successful"][lfn]["transfer"] == way
    out = fileRoot.parent / "out"
    got = manager.getFile(lfn, destinationDir=str(out), sourceSE=destSE)
    assert got["Value"]["Successful"], got
    assert (out / "f.dat").read_bytes() == local.read_bytes()
    _assertAgreement(buckets, fileRoot, dbFile)


def test_a_copy_url_is_only_signed_by_presign_copy_which_checks_the_source(keyless):
    """createPresignedUrl checks only the destination: asked for a copy it would let alice read any key."""
    from DIRAC.DataManagementSystem.Client.S3GatewayClient import S3GatewayClient
    from DIRAC.Resources.Storage.StorageElement import StorageElement

    buckets, fileRoot, dbFile = keyless
    server, bucket = buckets["S3-K1"]
    secret = "testvo/user/b/bob/secret.dat"
    etag = server.client().put_object(Bucket=bucket, Key=secret, Body=b"bob's secret")["ETag"]
    url = StorageElement("S3-K1").storages[0]._lfnToURL(f"{HOME}/stolen.dat")
    params = {"SourceBucket": bucket, "SourceKey": secret, "SourceETag": etag}
    for method in ("copy_object", "upload_part_copy"):
        asked = S3GatewayClient().createPresignedUrl("S3-K1", method, {url: params}, 60)
        assert not asked["OK"] and "presignCopy" in asked["Message"], asked
    stored = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in stored] == [secret]

"""A user without S3 keys cleans up after a failed registration even when the FileCatalog is down.

Real processes: a FileCatalog service and an S3Gateway (``dirac-service``), rclone
checking signatures. The catalog service is stopped (by its PID) at the moment the
DataManager registers: the gateway can no longer check permissions, so the
clean-up uses the HEAD and DELETE URLs the gateway handed out with the put URL.
"""

from __future__ import annotations

import pytest

from catalog_fixtures import client_environment, systems_cfg
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog
from rpc_fixtures import ServiceLauncher, free_port, service_cfg
from s3_fixtures import merge_cfg, s3_se_cfg

LFN = "/testvo/user/a/alice/keyless/f.dat"
MIB5 = 5 * 1024 * 1024
ALICE = {"DN": "/CN=alice", "username": "alice", "group": "dirac_user", "properties": ["NormalUser"], "VO": "testvo"}


@pytest.fixture
def keyless(request, test_ca, tmp_path):
    """A catalog and a gateway (subprocesses); this process is alice without S3 keys. rclone unless
    the test is parametrised ``indirect`` with ``moto_server`` (which refuses a second write)."""
    rclone_s3_server = request.getfixturevalue(getattr(request, "param", "rclone_s3_server"))
    bucket = rclone_s3_server.make_bucket()
    catalogPort, gatewayPort = free_port(), free_port()
    systems = systems_cfg(tmp_path, catalogPort, [gatewayPort], facade=True)
    serverCfg = tmp_path / "server.cfg"
    serverSE = s3_se_cfg("S3-K", rclone_s3_server, bucket)
    serverCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, serverSE)))
    clientCfg = tmp_path / "client.cfg"
    small = {"MultipartThreshold": MIB5, "MultipartChunkSize": MIB5}
    clientSE = s3_se_cfg("S3-K", rclone_s3_server, bucket, with_keys=False, **small)
    clientCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, clientSE)))
    launcher = ServiceLauncher()
    catalog = launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
    launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
    proxy = test_ca.proxy("alice", "dirac_user", path=tmp_path / "alice.pem")
    try:
        with client_environment(clientCfg, X509_CERT_DIR=str(test_ca.caDir), X509_USER_PROXY=str(proxy)):
            yield catalog, rclone_s3_server, bucket, tmp_path
    finally:
        launcher.stopAll()


class CatalogStopsAtRegistration:
    """The real FileCatalog facade; the catalog service process is stopped just before ``addFile``."""

    def __init__(self, service):
        self.facade = FileCatalog()
        self.service = service

    def __getattr__(self, name):
        return getattr(self.facade, name)

    def addFile(self, lfns):
        assert self.service.stop() is not None
        return self.facade.addFile(lfns)


def _objects(server, bucket) -> list[str]:
    return [item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_catalog_down_during_registration_the_keyless_upload_is_removed(keyless):
    catalogService, server, bucket, tmp_path = keyless
    local = tmp_path / "f.dat"
    local.write_bytes(b"keyless data" * 1000)
    manager = DataManager(fileCatalog=CatalogStopsAtRegistration(catalogService))
    result = manager.putAndRegister(LFN, str(local), "S3-K")
    assert result["OK"], result
    assert LFN not in result["Value"]["Successful"]
    reason = result["Value"]["Failed"][LFN]
    assert "Connection refused" in reason and "was removed" in reason, reason
    assert _objects(server, bucket) == [], "no dark data: the gateway's clean-up URLs removed the upload"
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    try:
        assert db.exists(LFN, ALICE)["Value"]["Successful"][LFN] is False
    finally:
        db.close()


def test_the_clean_up_urls_are_only_used_for_our_own_upload(keyless):
    """A second, different object under the LFN (another writer's) is not deleted by the held URLs."""
    catalogService, server, bucket, tmp_path = keyless
    local = tmp_path / "f.dat"
    local.write_bytes(b"ours" * 1000)

    class AnotherWriterFirst(CatalogStopsAtRegistration):
        def addFile(self, lfns):
            server.client().put_object(Bucket=bucket, Key=LFN.lstrip("/"), Body=b"theirs" * 10)
            return super().addFile(lfns)

    result = DataManager(fileCatalog=AnotherWriterFirst(catalogService)).putAndRegister(LFN, str(local), "S3-K")
    reason = result["Value"]["Failed"][LFN]
    assert "not ours" in reason, reason
    assert _objects(server, bucket) == [LFN.lstrip("/")]


def test_a_keyless_re_run_aborts_the_unfinished_upload_a_killed_client_left(keyless):
    """Listing and aborting the key's earlier multipart upload go through the gateway too."""
    _catalogService, server, bucket, tmp_path = keyless
    key = LFN.lstrip("/")
    orphan = server.client().create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    local = tmp_path / "big.dat"
    local.write_bytes(b"m" * (MIB5 + 100))
    result = DataManager().putAndRegister(LFN, str(local), "S3-K")
    assert result["OK"] and LFN in result["Value"]["Successful"], result
    left = server.client().list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    assert orphan not in [upload["UploadId"] for upload in left]
    assert _objects(server, bucket) == [key]


def test_check_se_end_to_end_over_the_catalog_service_and_the_gateway(keyless, capsys):
    """The command with its default catalog (the FileCatalog service) on a keyless SE (the gateway)."""
    from DIRAC.DataManagementSystem.scripts import dirac_dms_check_se

    _catalogService, server, bucket, tmp_path = keyless
    local = tmp_path / "f.dat"
    local.write_bytes(b"registered" * 100)
    assert LFN in DataManager().putAndRegister(LFN, str(local), "S3-K")["Value"]["Successful"]
    dark = f"{LFN}.dark"
    server.client().put_object(Bucket=bucket, Key=dark.lstrip("/"), Body=b"dark")
    top = LFN.rsplit("/", 1)[0]
    assert dirac_dms_check_se.main(["S3-K", top, "--age", "0"]) == 1
    assert f"DARK {dark}" in capsys.readouterr().out
    assert dirac_dms_check_se.main(["S3-K", top, "--age", "0", "--fix", "--yes"]) == 0
    assert f"REMOVED {dark}" in capsys.readouterr().out
    assert _objects(server, bucket) == [LFN.lstrip("/")]
    assert dirac_dms_check_se.main(["S3-K", top, "--age", "0"]) == 0


PUT_SCRIPT = """
import sys, DIRAC
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
DIRAC.initialize()
result = DataManager().putAndRegister(sys.argv[1], sys.argv[2], "S3-K")
print(result)
sys.exit(0 if result["OK"] and sys.argv[1] in result["Value"]["Successful"] else 1)
"""


@pytest.mark.parametrize("keyless", ["moto_server"], indirect=True)
def test_two_keyless_processes_put_one_lfn_at_once_on_a_store_that_refuses_a_second_write(keyless):
    """Through the gateway every put carries If-None-Match: the loser's write is refused, nothing is lost."""
    import subprocess
    import sys

    from DIRAC.Core.Utilities.Adler import fileAdler

    _catalogService, server, bucket, tmp_path = keyless
    for round_ in range(3):
        lfn = f"{LFN}.{round_}"
        files = []
        for writer in (1, 2):
            path = tmp_path / f"w{round_}-{writer}.dat"
            path.write_bytes(bytes([writer]) * 5000)
            files.append(str(path))
        workers = [
            subprocess.Popen([sys.executable, "-c", PUT_SCRIPT, lfn, path], stdout=subprocess.PIPE, text=True)
            for path in files
        ]
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
        codes = [worker.returncode for worker in workers]
        assert sorted(codes) == [0, 1], outputs
        winner = files[codes.index(0)]
        stored = server.client().head_object(Bucket=bucket, Key=lfn.lstrip("/"))
        assert stored["Metadata"]["checksum"] == fileAdler(winner), "the stored bytes are the winner's"
        registered = FileCatalog().getFileMetadata(lfn)["Value"]["Successful"][lfn]
        assert registered["Checksum"] == fileAdler(winner)
    assert sorted(_objects(server, bucket)) == [f"{LFN.lstrip('/')}.{n}" for n in range(3)]

"""Failures on the wire, through the fault relay: S3 answers lost or reset, the catalog's answer lost.

The S3 SEs point at a ``FaultRelay`` in front of a real S3 server (moto or rclone),
with ``Retries = 0`` so that the DataManager's own handling is what is tested
(the transport's retries are tested by its own suite). The catalog is a real
FileCatalogDB; for ``addFile`` over the wire, a real FileCatalog HTTPS service
behind a relay (TCP-level faults: TLS). After each test the bucket and the
catalog are listed and must agree, no multipart upload may be open and no
temporary folder left.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agreement_fixtures import ALICE, MIB5, Site
from catalog_fixtures import DBCatalog, systems_cfg
from DIRAC.Core.Utilities.Adler import fileAdler
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient
from DIRAC.Resources.Storage.StorageElement import StorageElement
from fault_relay import Fault, FaultRelay

HOME = "/vo/user/a/alice"
LFN = f"{HOME}/relay/f.dat"
#: alice as the catalog service's registry knows her, and her home there
WIRE_ALICE = {**ALICE, "group": "dirac_user", "VO": "testvo"}
WIRE_LFN = "/testvo/user/a/alice/relay/f.dat"


@pytest.fixture(params=["rclone", "moto"])
def site(request, dirac_cfg, tmp_path):
    server = request.getfixturevalue("rclone_s3_server" if request.param == "rclone" else "moto_server")
    with FaultRelay(server.host, server.port) as relay:
        environment = Site(server, dirac_cfg, tmp_path, through=relay, Retries=0, ReadTimeout=5)
        environment.relay = relay
        yield environment
        environment.db.close()


def _key(lfn: str) -> str:
    return lfn.lstrip("/").replace(".", r"\.")


def _result(result: dict) -> tuple[dict, dict]:
    assert result["OK"], result
    return result["Value"]["Successful"], result["Value"]["Failed"]


def test_lost_put_answer(site):
    lost = site.relay.add(Fault("lose", method="PUT", path=_key(LFN)))
    done, failed = _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    assert lost.fired == 1
    assert LFN in done and not failed, failed
    site.assertAgreement()


def test_lost_complete_multipart_upload_answer(site):
    lost = site.relay.add(Fault("lose", method="POST", path=_key(LFN) + r"\?uploadId="))
    local = site.file("big.dat", size=MIB5 + 4321)
    done, failed = _result(site.dm().putAndRegister(LFN, local, "S3-A"))
    assert lost.fired == 1
    assert LFN in done and not failed, failed
    assert site.db.getFileMetadata(LFN, ALICE)["Value"]["Successful"][LFN]["Checksum"] == fileAdler(local)
    site.assertAgreement()


@pytest.mark.parametrize("kind", ["reset", "lose"])
def test_a_part_upload_failure_aborts_the_multipart_upload(site, kind):
    # times=2: a part sent on a kept-alive connection that ends unanswered is resent once on a new
    # one even with Retries = 0 (the transport's stale-connection rule); the resend fails too
    fault = site.relay.add(Fault(kind, method="PUT", path=r"partNumber=2", direction="request", after=1000, times=2))
    done, failed = _result(site.dm().putAndRegister(LFN, site.file("big.dat", size=2 * MIB5 + 10), "S3-A"))
    assert fault.fired >= 1
    assert not done and "nothing stored" in failed[LFN], failed
    site.assertAgreement()


def test_reset_during_the_put_body_stores_nothing(site):
    reset = site.relay.add(Fault("reset", method="PUT", direction="request", after=1000))
    done, failed = _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    assert reset.fired == 1
    assert not done and "nothing stored" in failed[LFN], failed
    site.assertAgreement()
    done, _ = _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    assert LFN in done, "a re-run finishes the work"
    site.assertAgreement()


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "reset", "method": "GET", "after": 100},  # the source download
        {"kind": "reset", "method": "PUT", "direction": "request", "after": 100},  # the destination upload
        {"kind": "lose", "method": "PUT"},  # the destination upload's answer
        {"kind": "answer", "method": "HEAD", "status": 503},  # the check of the destination copy
    ],
    ids=["get-reset", "put-reset", "put-lost", "head-503"],
)
def test_replication_step_failures(site, fault):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    fault = site.relay.add(Fault(**fault))
    cache = str(site.tmp / "cache")
    done, failed = _result(site.dm().replicateAndRegister(LFN, "S3-B", localCache=cache))
    assert fault.fired == 1
    site.assertAgreement()
    if LFN not in done:
        done, failed = _result(site.dm().replicateAndRegister(LFN, "S3-B", localCache=cache))
        assert LFN in done, f"a re-run finishes the work: {failed}"
    assert set(site.db.getReplicas(LFN, ALICE)["Value"]["Successful"][LFN]) == {"S3-A", "S3-B"}
    site.assertAgreement()


@pytest.mark.parametrize(
    "fault",
    [{"kind": "lose", "method": "DELETE"}, {"kind": "answer", "method": "DELETE", "status": 503, "s3Code": "SlowDown"}],
    ids=["delete-lost", "delete-503"],
)
def test_removal_step_failures(site, fault):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    fault = site.relay.add(Fault(**fault))
    done, failed = _result(site.dm().removeFile(LFN))
    assert fault.fired == 1
    site.assertAgreement()
    if LFN not in done:
        done, failed = _result(site.dm().removeFile(LFN))
    assert LFN in done, failed
    site.assertAgreement()


# ---------------------------------------------------------------------- the catalog over the wire


class WireRegistration(DBCatalog):
    """The test catalog, but ``addFile`` goes over HTTPS to the real FileCatalog service (through the relay)."""

    def __init__(self, db, credentials, client: FileCatalogClient):
        super().__init__(db, credentials)
        self.client = client

    def addFile(self, lfns):
        return self.client.addFile(lfns)


@pytest.fixture
def catalog_relay(test_ca, tmp_path, rpc_launcher, rclone_s3_server, dirac_cfg, monkeypatch):
    """A FileCatalog service on the site's DB file, a relay in front of it, alice's proxy."""
    from rpc_fixtures import service_cfg

    site = Site(rclone_s3_server, dirac_cfg, tmp_path)
    cfgPath = tmp_path / "catalog.cfg"
    cfgPath.write_text(service_cfg(test_ca, {}, extra=systems_cfg(tmp_path, dbFile="fc.sqlite")))
    service = rpc_launcher.start("DataManagement/FileCatalog", cfgPath)
    proxy = str(test_ca.proxy("alice", "dirac_user", path=tmp_path / "alice.pem"))
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    with FaultRelay("127.0.0.1", service.port) as relay:
        url = f"https://localhost:{relay.port}/DataManagement/FileCatalog"
        yield site, relay, FileCatalogClient(url=url, proxyLocation=proxy, timeout=5), service
    service.stop()
    site.db.close()


def test_lost_add_file_answer_over_tls(catalog_relay):
    site, relay, client, _service = catalog_relay
    lose = relay.add(Fault("lose", tcp=True, after=1, times=2))  # the call and the client's one fresh retry
    catalog = WireRegistration(site.db, WIRE_ALICE, client)
    done, failed = _result(DataManager(fileCatalog=catalog).putAndRegister(WIRE_LFN, site.file("f.dat"), "S3-A"))
    assert WIRE_LFN in done and not failed, failed
    assert lose.fired >= 1
    site.assertAgreement()


def test_catalog_down_during_registration_leaves_nothing(catalog_relay):
    site, relay, client, _service = catalog_relay
    relay.add(Fault("refuse", rst=True, times=100))  # down for every connection
    catalog = WireRegistration(site.db, WIRE_ALICE, client)
    done, failed = _result(DataManager(fileCatalog=catalog).putAndRegister(WIRE_LFN, site.file("f.dat"), "S3-A"))
    assert not done and "was removed" in failed[WIRE_LFN], failed
    site.assertAgreement()
    assert site.objects("S3-A") == {}


# ---------------------------------------------------------------------- other processes

WORKER = Path(__file__).resolve().parents[1] / "dm_worker.py"


def _worker(site, lfn: str, first: str, second: str = "S3-A", operation: str = "put") -> subprocess.Popen:
    command = [sys.executable, str(WORKER), str(site.tmp / "fc.sqlite"), operation, lfn, first, second]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _killWhen(site, worker: subprocess.Popen, since: int, condition, what: str) -> None:
    """SIGKILL ``worker`` once ``condition()`` holds (bounded wait), then wait (bounded) until what it had
    sent has landed: with the relay's delay its bytes flow into the server for a while after the kill,
    and a re-run must meet the leftovers of a killed client, not a client still sending. The worker's
    connections are the relay's after number ``since``."""
    try:
        deadline = time.monotonic() + 60
        while not condition():
            assert worker.poll() is None, f"the worker ended before {what}: {worker.communicate()}"
            assert time.monotonic() < deadline, f"no {what} within 60 s"
            time.sleep(0.02)
    finally:
        worker.kill()  # SIGKILL: no clean-up of its own
        worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    left = site.relay.waitClosed(range(since + 1, site.relay.connections + 1))
    assert not left, f"the killed client's connections {left} stay open"


def test_a_client_killed_mid_put_then_run_again(site):
    site.relay.delay = 0.02  # parts take a while: time to kill the client in the middle
    local = site.file("big.dat", size=4 * MIB5 + 10)
    since, worker = site.relay.connections, _worker(site, LFN, local)
    _killWhen(site, worker, since, lambda: any("partNumber=2" in r.target for r in site.relay.requests), "second part")
    if site.server.name == "moto":
        assert site.openUploads("S3-A"), "the killed client left its multipart upload open"
    site.relay.delay = 0
    done, failed = _result(site.dm().putAndRegister(LFN, local, "S3-A"))
    assert LFN in done, failed
    site.assertAgreement()


def test_two_processes_put_the_same_lfn_at_once(site):
    """The first registration wins; the loser never deletes the object; the checker sees any overwrite."""
    from agreement_fixtures import ALICE as USER
    from DIRAC.DataManagementSystem.Client.StorageConsistency import StorageConsistency

    class Listing(DBCatalog):
        def listDirectory(self, lfns, verbose=False):
            return self.db.listDirectory(lfns, self.credentials, verbose)

    for round_ in range(3):
        lfn = f"{HOME}/race/{round_}.dat"
        workers = [_worker(site, lfn, site.file(f"{round_}-{n}.dat", seed=10 * round_ + n)) for n in (1, 2)]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        codes = [worker.returncode for worker in workers]
        assert codes.count(0) == 1, outputs
        loser = outputs[codes.index(1)][0]
        assert "already registered" in loser or "another writer" in loser or "not ours" in loser, loser
        assert lfn in site.objects("S3-A"), "the winner's registered object must never be deleted"
        stored = site.dm().storage.inspect(StorageElement("S3-A"), [lfn])[lfn][1]
        registered = site.db.getFileMetadata(lfn, USER)["Value"]["Successful"][lfn]
        report = StorageConsistency("S3-A", fileCatalog=Listing(site.db, USER)).check(
            f"{HOME}/race", minAge=0, checksums=True
        )["Value"]
        if stored["Checksum"] != registered["Checksum"]:  # the loser's PUT replaced the winner's bytes
            assert lfn in report.mismatches, "an overwrite by a store without If-None-Match is reported"
        else:
            assert lfn not in report.mismatches
    site.assertAgreement()


def test_a_replication_killed_mid_copy_then_run_again(site):
    _result(site.dm().putAndRegister(LFN, site.file("big.dat", size=3 * MIB5), "S3-A"))
    cache = site.tmp / "cache"
    site.relay.delay = 0.02
    since, worker = site.relay.connections, _worker(site, LFN, "S3-B", str(cache), operation="replicate")

    def partialCopy() -> bool:
        return any(path.is_file() for path in cache.rglob("dirac-replicate-*/*/*"))

    _killWhen(site, worker, since, partialCopy, "partial copy")
    assert list(cache.glob("dirac-replicate-*")), "the killed replication left its folder"
    site.relay.delay = 0
    done, failed = _result(site.dm().replicateAndRegister(LFN, "S3-B", localCache=str(cache)))
    assert LFN in done, failed
    assert not list(cache.glob("dirac-replicate-*")), "the next run removed the folder of the killed one"
    site.assertAgreement()

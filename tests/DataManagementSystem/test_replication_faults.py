"""Faults on the wire during a server-side or streamed copy: re-running finishes, catalog and storage agree.

The S3 SEs point at a ``FaultRelay`` in front of a real S3 server (rclone or moto)
with ``Retries = 0``, so that the DataManager's own handling is what is tested.
Both SEs through one relay are one S3 service (server-side copy); one SE through
the relay and the other straight at the server are two services (streamed copy).
After each test ``assertAgreement`` lists both buckets and the whole catalog.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_datamanager_failures import LostAnswerCatalog

from agreement_fixtures import ALICE, MIB5, Site
from DIRAC.Resources.Storage.CopyWays import SERVER_SIDE, STREAMED
from fault_relay import Fault, FaultRelay
from s3_fixtures import s3_se_cfg

LFN = "/vo/user/a/alice/copyfaults/f.dat"
KEY = LFN.lstrip("/")
OPTIONS = {"Retries": 0, "ReadTimeout": 5, "MultipartThreshold": MIB5, "MultipartChunkSize": MIB5}
WORKER = Path(__file__).resolve().parents[1] / "dm_worker.py"


@pytest.fixture(params=["rclone", "moto"])
def site(request, dirac_cfg, tmp_path):
    """Two SEs of one S3 service, both through the relay: copies between them are server-side."""
    server = request.getfixturevalue("rclone_s3_server" if request.param == "rclone" else "moto_server")
    with FaultRelay(server.host, server.port) as relay:
        environment = Site(server, dirac_cfg, tmp_path, through=relay, **OPTIONS)
        environment.relay = relay
        yield environment
        environment.db.close()


def _streamedThrough(site, dirac_cfg, relayed: str) -> None:
    """Reconfigure: only SE ``relayed`` goes through the relay, the other straight to the server (two services)."""
    relay = SimpleNamespace(
        host=site.relay.host, port=site.relay.port, access_key=site.server.access_key, secret_key=site.server.secret_key
    )
    dirac_cfg(
        [
            s3_se_cfg(name, relay if name == relayed else site.server, bucket, **OPTIONS)
            for name, bucket in site.buckets.items()
        ]
    )


def _result(result: dict) -> tuple[dict, dict]:
    assert result["OK"], result
    return result["Value"]["Successful"], result["Value"]["Failed"]


def _replicateUntilDone(site, way: str, manager=None) -> None:
    """Replicate ``LFN`` to S3-B; when the first run failed, a re-run finishes it. Agreement after each."""
    done, failed = _result((manager or site.dm()).replicateAndRegister(LFN, "S3-B"))
    site.assertAgreement()
    if LFN not in done:
        assert "nothing registered" in failed[LFN] or "run the same command again" in failed[LFN], failed
        done, failed = _result(site.dm().replicateAndRegister(LFN, "S3-B"))
    assert LFN in done, f"a re-run finishes the work: {failed}"
    assert done[LFN]["transfer"] in (way, "none: already there"), done
    assert set(site.db.getReplicas(LFN, ALICE)["Value"]["Successful"][LFN]) == {"S3-A", "S3-B"}
    site.assertAgreement()


def _destination(site) -> str:
    return re.escape(f"/{site.buckets['S3-B']}/{KEY}")


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "lose"},  # the copy ran, its answer was lost
        {"kind": "reset"},  # reset before the answer's head
        {"kind": "answer", "status": 503, "s3Code": "SlowDown"},  # the server never got it
    ],
    ids=["copy-lost", "copy-reset", "copy-503"],
)
def test_server_side_copy_faults(site, fault):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    injected = site.relay.add(Fault(method="PUT", path=_destination(site), **fault))
    _replicateUntilDone(site, SERVER_SIDE)
    assert injected.fired == 1


def test_lost_complete_answer_of_a_server_side_copy_in_parts(moto_server, dirac_cfg, tmp_path):
    """moto copies parts (UploadPartCopy): the completion's answer is lost, the copy is there and checked."""
    with FaultRelay(moto_server.host, moto_server.port) as relay:
        site = Site(moto_server, dirac_cfg, tmp_path, through=relay, **OPTIONS)
        site.relay = relay
        try:
            _result(site.dm().putAndRegister(LFN, site.file("big.dat", size=MIB5 + 777), "S3-A"))
            lost = relay.add(Fault("lose", method="POST", path=_destination(site) + r"\?uploadId="))
            _replicateUntilDone(site, SERVER_SIDE)
            assert lost.fired == 1
        finally:
            site.db.close()


@pytest.mark.parametrize(
    ("relayed", "fault"),
    [
        ("S3-A", {"kind": "reset", "method": "GET", "after": 1000}),  # the source's read
        ("S3-B", {"kind": "lose", "method": "PUT"}),  # the destination write's answer
        ("S3-B", {"kind": "reset", "method": "PUT", "direction": "request", "after": 1000}),  # mid-body
    ],
    ids=["source-read-reset", "write-lost", "write-reset"],
)
def test_streamed_copy_faults(site, dirac_cfg, relayed, fault):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    _streamedThrough(site, dirac_cfg, relayed)
    injected = site.relay.add(Fault(**fault))
    _replicateUntilDone(site, STREAMED)
    assert injected.fired == 1


@pytest.mark.parametrize("way", [SERVER_SIDE, STREAMED])
def test_a_lost_add_replica_answer_after_a_direct_copy_keeps_the_replica(site, dirac_cfg, way):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    if way == STREAMED:
        _streamedThrough(site, dirac_cfg, "S3-B")
    done, failed = _result(
        site.dm(LostAnswerCatalog(site.db, ALICE, lose=["addReplica"])).replicateAndRegister(LFN, "S3-B")
    )
    assert done[LFN]["transfer"] == way and not failed, failed
    site.assertAgreement()


@pytest.mark.parametrize("way", [SERVER_SIDE, STREAMED])
def test_a_catalog_that_never_got_add_replica_gets_the_copy_removed_and_a_re_run_finishes(site, dirac_cfg, way):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    if way == STREAMED:
        _streamedThrough(site, dirac_cfg, "S3-B")
    down = site.dm(LostAnswerCatalog(site.db, ALICE, notSent=["addReplica"]))
    done, failed = _result(down.replicateAndRegister(LFN, "S3-B"))
    assert not done and "was removed" in failed[LFN], failed
    site.assertAgreement()
    _replicateUntilDone(site, way)


def _killAtPartTwo(site) -> None:
    """Replicate to S3-B in its own process (direct ways); SIGKILL it while its part 2 into S3-B is held."""
    site.relay.forget()
    site.relay.add(Fault("stall", method="PUT", path=_destination(site) + r"\?.*partNumber=2", seconds=30))
    command = [sys.executable, str(WORKER), str(site.tmp / "fc.sqlite"), "replicate", LFN, "S3-B", ""]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any("partNumber=2" in r.target and r.method == "PUT" for r in site.relay.requests):
            assert worker.poll() is None, f"the worker ended before it was killed: {worker.communicate()}"
            assert time.monotonic() < deadline, "the copy did not reach part 2 within 60 s"
            time.sleep(0.02)
    finally:
        worker.kill()
        worker.communicate(timeout=30)
    site.relay.clear()
    if site.server.name == "moto":
        assert site.openUploads("S3-B"), "the killed copy left its multipart upload open"


def test_a_streamed_copy_killed_mid_way_then_run_again(site, dirac_cfg):
    _result(site.dm().putAndRegister(LFN, site.file("big.dat", size=3 * MIB5), "S3-A"))
    _streamedThrough(site, dirac_cfg, "S3-B")
    _killAtPartTwo(site)
    _replicateUntilDone(site, STREAMED)


def test_a_server_side_copy_in_parts_killed_mid_way_then_run_again(moto_server, dirac_cfg, tmp_path):
    with FaultRelay(moto_server.host, moto_server.port) as relay:
        site = Site(moto_server, dirac_cfg, tmp_path, through=relay, **OPTIONS)
        site.relay = relay
        try:
            _result(site.dm().putAndRegister(LFN, site.file("big.dat", size=3 * MIB5), "S3-A"))
            _killAtPartTwo(site)
            _replicateUntilDone(site, SERVER_SIDE)
        finally:
            site.db.close()


def _bytesThrough(relay) -> int:
    return sum(sum(relay.bytesForwarded(number)) for number in range(1, relay.connections + 1))


def test_a_server_side_copy_moves_no_byte_through_the_client(site, dirac_cfg):
    """Everything between this client and the S3 service passes the relay: a copy sends requests, not the file."""
    size = 2 * MIB5 + 10 if site.server.name == "moto" else MIB5  # moto copies in parts, rclone in one CopyObject
    _result(site.dm().putAndRegister(LFN, site.file("big.dat", size=size), "S3-A"))
    before = _bytesThrough(site.relay)
    done, failed = _result(site.dm().replicateAndRegister(LFN, "S3-B"))
    assert done[LFN]["transfer"] == SERVER_SIDE, failed
    assert _bytesThrough(site.relay) - before < 100_000 < size
    _streamedThrough(site, dirac_cfg, "S3-A")
    before = _bytesThrough(site.relay)
    _result(site.dm().removeReplica("S3-B", LFN))
    done, failed = _result(site.dm().replicateAndRegister(LFN, "S3-B"))
    assert done[LFN]["transfer"] == STREAMED, failed
    assert _bytesThrough(site.relay) - before > size, "a streamed copy reads the source through this client"
    site.assertAgreement()

"""Every failure of put / replicate / remove ends in a known state: catalog and bucket agree.

Real S3 servers (rclone, moto) and a real FileCatalogDB. The faults are seams in
the objects the DataManager is given (the answer of a call that did run is
replaced by an error, as when the network loses it), in the spirit of
s3transfer's ``StreamWithError``; the network itself is never mocked. After each
test ``assertAgreement`` lists the bucket and the catalog and compares them.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from agreement_fixtures import ALICE, MIB5, Site
from catalog_fixtures import DBCatalog
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import fileAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR
from DIRAC.DataManagementSystem.Client.DataManagerStorage import OWNER_FILE, ownerStamp
from DIRAC.Resources.Storage.StorageElement import StorageElement

HOME = "/vo/user/a/alice"
LFN = f"{HOME}/safety/f.dat"
LOST = "connection reset by peer (the answer was lost)"


class LostAnswerCatalog(DBCatalog):
    """The catalog runs the call, then its answer is lost (``lose`` names the methods)."""

    def __init__(self, db, credentials, lose=(), notSent=()):
        super().__init__(db, credentials)
        self.lose, self.notSent = set(lose), set(notSent)

    def _fault(self, method, real, lfns):
        if method in self.notSent:
            return S_ERROR(DErrno.ECONNREFUSED, f"cannot call DataManagement/FileCatalog.{method}: Connection refused")
        result = real(lfns)
        return S_ERROR(DErrno.ERPC, f"{method}: {LOST}") if method in self.lose else result

    def addFile(self, lfns):
        return self._fault("addFile", super().addFile, lfns)

    def addReplica(self, lfns):
        return self._fault("addReplica", super().addReplica, lfns)


class LostAnswerSE:
    """A real StorageElement whose ``putFile`` runs, then its answer is lost."""

    def __init__(self, name: str, runFirst=None):
        self._se = StorageElement(name)
        self._runFirst = runFirst

    def __getattr__(self, name):
        return getattr(self._se, name)

    def putFile(self, *args, **kwargs):
        if self._runFirst:
            self._runFirst()
        self._se.putFile(*args, **kwargs)
        return S_ERROR(DErrno.EIO, f"upload: {LOST}")


@pytest.fixture(params=["rclone", "moto"])
def site(request, dirac_cfg, tmp_path):
    server = request.getfixturevalue(f"{request.param}_s3_server" if request.param == "rclone" else "moto_server")
    environment = Site(server, dirac_cfg, tmp_path)
    yield environment
    environment.db.close()


def _result(result: dict) -> tuple[dict, dict]:
    assert result["OK"], result
    return result["Value"]["Successful"], result["Value"]["Failed"]


def test_a_lost_put_answer_is_checked_and_the_file_registered(site):
    local = site.file("f.dat")
    done, failed = _result(site.dm(S3_A=LostAnswerSE("S3-A")).putAndRegister(LFN, local, "S3-A"))
    assert LFN in done and not failed
    assert site.db.getFileMetadata(LFN, ALICE)["Value"]["Successful"][LFN]["Checksum"] == fileAdler(local)
    site.assertAgreement()


def test_a_lost_add_file_answer_keeps_the_registered_object(site):
    local = site.file("f.dat")
    catalog = LostAnswerCatalog(site.db, ALICE, lose=["addFile"])
    done, failed = _result(site.dm(catalog).putAndRegister(LFN, local, "S3-A"))
    assert LFN in done and not failed, "the catalog has it: the lost answer is a success"
    assert site.objects("S3-A") == {LFN: 3000}
    site.assertAgreement()


def test_a_catalog_that_never_got_the_call_gets_the_object_removed(site):
    catalog = LostAnswerCatalog(site.db, ALICE, notSent=["addFile"])
    done, failed = _result(site.dm(catalog).putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    assert not done and "was removed" in failed[LFN], failed
    site.assertAgreement()
    assert site.objects("S3-A") == {}


def test_a_re_run_after_a_lost_answer_succeeds_with_nothing_to_do(site):
    local = site.file("f.dat")
    catalog = LostAnswerCatalog(site.db, ALICE, lose=["addFile"])
    _result(site.dm(catalog).putAndRegister(LFN, local, "S3-A"))
    done, failed = _result(site.dm().putAndRegister(LFN, local, "S3-A"))
    assert done == {LFN: {"put": 0.0, "register": 0.0}} and not failed
    done, failed = _result(site.dm().putAndRegister(LFN, site.file("other.dat", seed=5), "S3-A"))
    assert "already registered" in failed[LFN], "other content is still refused"
    site.assertAgreement()


def test_the_loser_of_two_writers_never_deletes_the_winners_object(site):
    winnerFile, loserFile = site.file("a.dat", seed=1), site.file("b.dat", seed=9)

    def winnerWritesFirst():
        _result(site.dm().putAndRegister(LFN, winnerFile, "S3-A"))

    # The loser checked the catalog before the winner registered; its own put's answer is lost.
    loser = site.dm(S3_A=LostAnswerSE("S3-A", runFirst=winnerWritesFirst))
    done, failed = _result(loser.putAndRegister(LFN, loserFile, "S3-A"))
    assert LFN not in done and "left" in failed[LFN], failed
    meta = site.db.getFileMetadata(LFN, ALICE)["Value"]["Successful"][LFN]
    assert meta["Checksum"] == fileAdler(winnerFile)
    assert site.objects("S3-A") == {LFN: 3000}, "the winner's registered object must stay"
    site.assertAgreement()


def test_a_lost_add_replica_answer_keeps_the_new_replica(site):
    local = site.file("f.dat")
    _result(site.dm().putAndRegister(LFN, local, "S3-A"))
    catalog = LostAnswerCatalog(site.db, ALICE, lose=["addReplica"])
    done, failed = _result(site.dm(catalog).replicateAndRegister(LFN, "S3-B", localCache=str(site.tmp / "cache")))
    assert LFN in done and not failed
    assert set(site.db.getReplicas(LFN, ALICE)["Value"]["Successful"][LFN]) == {"S3-A", "S3-B"}
    site.assertAgreement()


def test_a_lost_upload_answer_during_replication_keeps_the_good_copy(site):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    manager = site.dm(S3_B=LostAnswerSE("S3-B"))
    done, failed = _result(manager.replicateAndRegister(LFN, "S3-B", localCache=str(site.tmp / "cache")))
    assert LFN in done and not failed
    site.assertAgreement()


class LostRemovalSE(LostAnswerSE):
    """A real StorageElement whose ``removeFile`` runs, then its answer is lost."""

    def removeFile(self, *args, **kwargs):
        self._se.removeFile(*args, **kwargs)
        return S_ERROR(DErrno.EIO, f"removal: {LOST}")


def test_a_lost_removal_answer_is_checked_and_the_file_unregistered(site):
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    _result(site.dm().replicateAndRegister(LFN, "S3-B", localCache=str(site.tmp / "cache")))
    done, failed = _result(site.dm(S3_B=LostRemovalSE("S3-B")).removeReplica("S3-B", LFN))
    assert LFN in done and not failed
    site.assertAgreement()
    done, failed = _result(site.dm(S3_A=LostRemovalSE("S3-A")).removeFile(LFN))
    assert LFN in done and not failed
    assert not site.db.exists(LFN, ALICE)["Value"]["Successful"][LFN]
    site.assertAgreement()


def test_a_killed_replications_folder_is_removed_by_the_next_run(site):
    cache = site.tmp / "cache"
    cache.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folders = {}
    for owner, stamp in {
        "dead": ownerStamp(dead.pid),
        "alive": ownerStamp(),
        "elsewhere": f"not-{socket.gethostname()} 1 1",
    }.items():
        folders[owner] = cache / f"dirac-replicate-{owner}"
        folders[owner].mkdir()
        (folders[owner] / OWNER_FILE).write_text(stamp)
        (folders[owner] / "partial.dat").write_bytes(b"x" * 100)
    _result(site.dm().putAndRegister(LFN, site.file("f.dat"), "S3-A"))
    done, _failed = _result(site.dm().replicateAndRegister(LFN, "S3-B", localCache=str(cache)))
    assert LFN in done
    assert not folders["dead"].exists(), "the folder of a process that is gone must be removed"
    assert folders["alive"].exists() and folders["elsewhere"].exists(), "a live or foreign owner's folder stays"
    for folder in ("alive", "elsewhere"):
        for item in folders[folder].iterdir():
            item.unlink()
        folders[folder].rmdir()
    site.assertAgreement()


def test_a_re_run_aborts_the_unfinished_upload_a_killed_client_left(site):
    client, bucket, key = site.server.client(), site.buckets["S3-A"], LFN.lstrip("/")
    orphan = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=orphan, PartNumber=1, Body=b"x" * MIB5)
    other = client.create_multipart_upload(Bucket=bucket, Key=key + ".other")["UploadId"]
    local = site.file("big.dat", size=MIB5 + 1000)
    done, failed = _result(site.dm().putAndRegister(LFN, local, "S3-A"))
    assert LFN in done and not failed
    left = {upload["UploadId"] for upload in site.openUploads("S3-A")}
    assert orphan not in left, "the earlier upload of the same key must be aborted"
    if site.server.name == "moto":
        assert left == {other}, "another key's upload is not ours to abort"
    client.abort_multipart_upload(Bucket=bucket, Key=key + ".other", UploadId=other)
    site.assertAgreement()

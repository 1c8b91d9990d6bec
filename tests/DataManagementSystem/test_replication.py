"""Replication's three ways against real servers: server-side copy, streamed copy, local copy.

Each test runs on rclone and on moto (``server``) with a second, different S3
server (``other``: moto for rclone, rclone for moto), a File SE, and a real
FileCatalogDB. Two buckets on one server copy server-side; between the two
servers, or between S3 and File, the copy is streamed; ``localCache`` forces the
old local copy. After every test ``assertAgreement`` lists every bucket, the File
SE's folder and the catalog: they must agree, with no open multipart upload and
no temporary file or folder left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from agreement_fixtures import ALICE, catalogFiles, openUploads
from catalog_fixtures import DBCatalog
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import fileAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.Resources.Storage.CopyWays import SERVER_SIDE, STREAMED
from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import S3Server, corrupt_object, file_se_cfg, s3_se_cfg

HOME = "/vo/user/a/alice"
LFN = f"{HOME}/ways/f.dat"
MIB5 = 5 * 1024 * 1024
LOCAL = "local copy"


@dataclass
class Ways:
    """S3-A and S3-B on ``server`` (one service), S3-OTHER on ``other``, FILE-A; a catalog DB for alice."""

    server: S3Server
    other: S3Server
    buckets: dict[str, tuple[S3Server, str]]
    fileRoot: Path
    db: FileCatalogDB
    tmp: Path

    def dm(self, catalog=None, **ses) -> DataManager:
        """A DataManager for alice; ``S3_B=se`` puts an SE object of our own in its cache."""
        manager = DataManager(fileCatalog=catalog or DBCatalog(self.db, ALICE))
        for name, se in ses.items():
            manager.storage._cache[name.replace("_", "-")] = se
        return manager

    def file(self, name: str, size: int = 70000, seed: int = 3) -> str:
        path = self.tmp / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((bytes(range(seed, seed + 200)) * (size // 200 + 1))[:size])
        return str(path)

    def put(self, lfn: str, seName: str, size: int = 70000, seed: int = 3) -> str:
        local = self.file(lfn.rsplit("/", 1)[-1], size, seed)
        done, failed = _result(self.dm().putAndRegister(lfn, local, seName))
        assert lfn in done, failed
        return local

    def stored(self, seName: str) -> dict[str, int]:
        """{LFN: size} of everything in the SE's bucket or folder (temporary files included)."""
        if seName.startswith("FILE"):
            return {
                "/" + str(p.relative_to(self.fileRoot)): p.stat().st_size
                for p in self.fileRoot.rglob("*")
                if p.is_file()
            }
        server, bucket = self.buckets[seName]
        pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {"/" + item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}

    def catalog(self, seName: str) -> dict[str, int]:
        return catalogFiles(self.db, seName)

    def openUploads(self, seName: str) -> list:
        return openUploads(*self.buckets[seName])

    def replicas(self, lfn: str) -> set[str]:
        return set(self.db.getReplicas(lfn, ALICE)["Value"]["Successful"].get(lfn, {}))

    def assertAgreement(self) -> None:
        """Every SE holds exactly what the catalog says; no open upload, no replication folder left."""
        for seName in [*self.buckets, "FILE-A"]:
            assert self.stored(seName) == self.catalog(seName), seName
        for seName in self.buckets:
            assert self.openUploads(seName) == [], f"open multipart uploads in {seName}"
        assert not list(self.tmp.rglob("dirac-replicate-*")), "a temporary replication folder was left"


def _result(result: dict) -> tuple[dict, dict]:
    assert result["OK"], result
    return result["Value"]["Successful"], result["Value"]["Failed"]


def makeWays(server, other, dirac_cfg, tmp_path, **s3Options) -> Ways:
    """The SEs of ``Ways`` configured with ``s3Options`` in each S3 section."""
    buckets = {"S3-A": (server, server.make_bucket()), "S3-B": (server, server.make_bucket())}
    buckets["S3-OTHER"] = (other, other.make_bucket())
    fileRoot = tmp_path / "file-a"
    fileRoot.mkdir()
    dirac_cfg(
        [
            *(s3_se_cfg(name, srv, bucket, **s3Options) for name, (srv, bucket) in buckets.items()),
            file_se_cfg("FILE-A", fileRoot),
        ]
    )
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    assert db.isConnected()["OK"]
    return Ways(server, other, buckets, fileRoot, db, tmp_path)


@pytest.fixture(params=["rclone", "moto"])
def ways(request, dirac_cfg, tmp_path):
    names = ["rclone_s3_server", "moto_server"] if request.param == "rclone" else ["moto_server", "rclone_s3_server"]
    server, other = (request.getfixturevalue(name) for name in names)
    environment = makeWays(server, other, dirac_cfg, tmp_path)
    yield environment
    environment.db.close()


def _checkReplica(ways: Ways, lfn: str, seName: str, local: str) -> None:
    """``seName`` holds the catalog's bytes of ``lfn``, read back through the DataManager."""
    out = ways.tmp / "out" / seName
    done, failed = _result(ways.dm().getFile(lfn, destinationDir=str(out), sourceSE=seName))
    assert lfn in done, failed
    assert Path(done[lfn]).read_bytes() == Path(local).read_bytes()


# ---------------------------------------------------------------------- each way where it belongs


@pytest.mark.parametrize(
    ("sourceSE", "destSE", "way"),
    [
        ("S3-A", "S3-B", SERVER_SIDE),
        ("S3-A", "S3-OTHER", STREAMED),
        ("S3-A", "FILE-A", STREAMED),
        ("FILE-A", "S3-B", STREAMED),
    ],
    ids=["one-service", "two-services", "s3-to-file", "file-to-s3"],
)
def test_each_pair_of_ses_is_copied_its_way(ways, sourceSE, destSE, way):
    local = ways.put(LFN, sourceSE)
    done, failed = _result(ways.dm().replicateAndRegister(LFN, destSE))
    assert LFN in done and not failed, failed
    assert done[LFN]["transfer"] == way
    assert done[LFN]["bytes"] == 70000 and done[LFN]["replicate"] > 0 and done[LFN]["register"] >= 0
    assert ways.replicas(LFN) == {sourceSE, destSE}
    stored = StorageElement(destSE).getFileMetadata(LFN)["Value"]["Successful"][LFN]
    assert stored["Size"] == 70000 and stored["Checksum"] == fileAdler(local)
    _checkReplica(ways, LFN, destSE, local)
    again, _ = _result(ways.dm().replicateAndRegister(LFN, destSE))
    assert again[LFN]["transfer"] == "none: already there"
    ways.assertAgreement()


def test_local_cache_forces_the_old_way_even_on_one_service(ways):
    local = ways.put(LFN, "S3-A")
    cache = ways.tmp / "cache"
    done, failed = _result(ways.dm().replicateAndRegister(LFN, "S3-B", localCache=str(cache)))
    assert done[LFN]["transfer"] == LOCAL and done[LFN]["bytes"] == 70000, failed
    assert list(cache.iterdir()) == []
    _checkReplica(ways, LFN, "S3-B", local)
    ways.assertAgreement()


def test_a_list_is_copied_each_file_its_way(ways):
    """One call, files from different sources: each takes the way its source allows."""
    lfns = {f"{HOME}/ways/s3-{n}.dat": "S3-A" for n in range(3)} | {
        f"{HOME}/ways/file-{n}.dat": "FILE-A" for n in range(2)
    }
    for n, (lfn, seName) in enumerate(lfns.items()):
        ways.put(lfn, seName, size=1000 + n, seed=n)
    done, failed = _result(ways.dm().replicateAndRegister(list(lfns), "S3-B"))
    assert not failed, failed
    assert {lfn: value["transfer"] for lfn, value in done.items()} == {
        lfn: SERVER_SIDE if seName == "S3-A" else STREAMED for lfn, seName in lfns.items()
    }
    ways.assertAgreement()


def test_storage_element_copy_from_se_and_replicate_file(ways):
    local = ways.put(LFN, "S3-A")
    size, checksum = 70000, fileAdler(local)
    copied = StorageElement("S3-B").copyFromSE(StorageElement("S3-A"), {LFN: {"Size": size, "Checksum": checksum}})
    assert copied["Value"]["Successful"] == {LFN: {"Size": size, "Way": SERVER_SIDE}}, copied
    replicated = StorageElement("FILE-A").replicateFile(LFN, sourceSize=size, sourceSE="S3-A")
    assert replicated["Value"]["Successful"] == {LFN: size}, replicated
    wrongSize = StorageElement("S3-OTHER").replicateFile({LFN: LFN}, sourceSize=size + 1, sourceSE="S3-A")
    assert f"not sourceSize {size + 1}" in wrongSize["Value"]["Failed"][LFN]
    assert LFN not in ways.stored("S3-OTHER")
    for seName in ("S3-B", "FILE-A"):  # copies without registration: removed again
        assert StorageElement(seName).removeFile(LFN)["Value"]["Successful"]
    ways.assertAgreement()


# ---------------------------------------------------------------------- what is checked


@pytest.mark.parametrize("destSE", ["S3-OTHER", "FILE-A"])
def test_a_source_that_does_not_match_the_catalog_registers_nothing_and_leaves_nothing(ways, destSE):
    """The source object is someone else's bytes (with their own checksum): every way refuses it."""
    local = ways.file("f.dat", 2048)
    assert StorageElement("S3-A").putFile({LFN: local})["Value"]["Successful"]
    entry = {"SE": "S3-A", "PFN": "", "Size": 2048, "Checksum": "0badc0de", "GUID": "G-1"}
    assert ways.db.addFile({LFN: entry}, ALICE)["OK"]
    done, failed = _result(ways.dm().replicateAndRegister(LFN, destSE))
    assert LFN not in done and "nothing registered" in failed[LFN], failed
    assert ways.replicas(LFN) == {"S3-A"}
    assert LFN not in ways.stored(destSE)
    ways.assertAgreement()


@pytest.mark.parametrize("destSE", ["S3-OTHER", "FILE-A"])
def test_a_source_changed_behind_its_metadata_is_caught_by_the_streamed_copy(ways, destSE):
    """One byte of the source changed, its size and checksum metadata kept: the adler32 on the way catches it.

    (A server-side copy reads no byte: it checks the source's size, checksum metadata and ETag, which
    this change keeps, so it would copy the changed bytes as they are; the README says so.)
    """
    ways.put(LFN, "S3-A")
    server, bucket = ways.buckets["S3-A"]
    corrupt_object(server, bucket, LFN.lstrip("/"), offset=1000)
    done, failed = _result(ways.dm().replicateAndRegister(LFN, destSE))
    assert LFN not in done and "nothing registered" in failed[LFN], failed
    assert LFN not in ways.stored(destSE)
    assert ways.replicas(LFN) == {"S3-A"}
    ways.assertAgreement()


def test_where_rclone_cannot_copy_in_parts_the_copy_is_streamed(rclone_s3_server, moto_server, dirac_cfg, tmp_path):
    """Above the multipart threshold a server-side copy needs UploadPartCopy, which rclone lacks."""
    ways = makeWays(
        rclone_s3_server, moto_server, dirac_cfg, tmp_path, MultipartThreshold=MIB5, MultipartChunkSize=MIB5
    )
    try:
        local = ways.put(LFN, "S3-A", size=MIB5 + 4321)
        done, failed = _result(ways.dm().replicateAndRegister(LFN, "S3-B"))
        assert done[LFN]["transfer"] == STREAMED, (done, failed)
        _checkReplica(ways, LFN, "S3-B", local)
        small = f"{HOME}/ways/small.dat"
        ways.put(small, "S3-A", size=1000)
        done, _ = _result(ways.dm().replicateAndRegister(small, "S3-B"))
        assert done[small]["transfer"] == SERVER_SIDE, "below the threshold the server still copies"
        ways.assertAgreement()
    finally:
        ways.db.close()


# ---------------------------------------------------------------------- the DataManager's own checks, through seams


class SeamSE:
    """A real StorageElement whose ``copyFromSEPerFile`` is replaced by ``copy(se, sourceSE, items)``."""

    def __init__(self, name: str, copy):
        self._se = StorageElement(name)
        self._copy = copy
        self.copies: list[str] = []

    def __getattr__(self, name):
        return getattr(self._se, name)

    def copyFromSEPerFile(self, sourceSE, items):
        self.copies.append(sourceSE.name)
        return self._copy(self._se, sourceSE, items)


def _putThenAnswer(ways: Ways, answer: dict, data: str | None = None):
    """A copy that writes ``data`` (default: the right bytes) at the destination, then answers ``answer``."""

    def copy(se, _sourceSE, items):
        for lfn in items:
            assert se.putFile({lfn: data or ways.file("f.dat")})["Value"]["Successful"]
        return {"OK": True, "Value": dict.fromkeys(items, answer)}

    return copy


def test_a_copy_whose_answer_was_lost_is_checked_and_registered(ways):
    ways.put(LFN, "S3-A")
    lost = {**S_ERROR(DErrno.EIO, "connection reset by peer (the answer was lost)"), "Way": SERVER_SIDE}
    seam = SeamSE("S3-B", _putThenAnswer(ways, lost))
    done, failed = _result(ways.dm(S3_B=seam).replicateAndRegister(LFN, "S3-B"))
    assert done[LFN]["transfer"] == SERVER_SIDE and not failed, failed
    ways.assertAgreement()


def test_a_failed_copy_that_left_a_wrong_object_gets_it_removed(ways):
    """A way that failed without cleaning up: the DataManager finds the wrong object and removes it."""
    ways.put(LFN, "S3-A")
    broken = {**S_ERROR(DErrno.EIO, "the connection broke"), "Way": STREAMED}
    seam = SeamSE("S3-B", _putThenAnswer(ways, broken, data=ways.file("short.dat", 100)))
    done, failed = _result(ways.dm(S3_B=seam).replicateAndRegister(LFN, "S3-B"))
    assert LFN not in done and "has size 100" in failed[LFN] and "was removed; nothing registered" in failed[LFN]
    ways.assertAgreement()


def test_a_real_failure_from_one_source_tries_the_next(ways):
    ways.put(LFN, "S3-A")
    _result(ways.dm().replicateAndRegister(LFN, "FILE-A", localCache=str(ways.tmp / "cache")))

    def copy(se, sourceSE, items):
        if len(seam.copies) == 1:  # the first source asked fails for real
            return {"OK": True, "Value": dict.fromkeys(items, {**S_ERROR(DErrno.EIO, "broken"), "Way": SERVER_SIDE})}
        return se.copyFromSEPerFile(sourceSE, items)

    seam = SeamSE("S3-B", copy)
    done, failed = _result(ways.dm(S3_B=seam).replicateAndRegister(LFN, "S3-B"))
    assert sorted(seam.copies) == ["FILE-A", "S3-A"], failed
    assert done[LFN]["transfer"] == (SERVER_SIDE if seam.copies[1] == "S3-A" else STREAMED)
    ways.assertAgreement()


def test_no_direct_way_falls_back_to_the_local_copy_and_local_cache_skips_the_direct_ways(ways):
    ways.put(LFN, "S3-A")
    cannot = S_ERROR(DErrno.EPROTONOSUPPORT, "no way here")
    seam = SeamSE("S3-B", lambda _se, _source, items: {"OK": True, "Value": dict.fromkeys(items, cannot)})
    done, failed = _result(ways.dm(S3_B=seam).replicateAndRegister(LFN, "S3-B"))
    assert done[LFN]["transfer"] == LOCAL and seam.copies == ["S3-A"], failed
    other = f"{HOME}/ways/g.dat"
    ways.put(other, "S3-A")
    done, failed = _result(ways.dm(S3_B=seam).replicateAndRegister(other, "S3-B", localCache=str(ways.tmp / "c")))
    assert done[other]["transfer"] == LOCAL and seam.copies == ["S3-A"], "localCache: no direct way is tried"
    ways.assertAgreement()

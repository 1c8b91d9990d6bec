"""dirac-dms-check-se on a bucket seeded with each kind of disagreement, then repaired with --fix."""

from __future__ import annotations

import zlib

import pytest

from catalog_fixtures import DBCatalog
from DIRAC.Core.Utilities.Adler import intAdlerToHex
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.Client.StorageConsistency import StorageConsistency
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.DataManagementSystem.scripts import dirac_dms_check_se
from s3_fixtures import s3_se_cfg

ALICE = {"DN": "/CN=alice", "username": "alice", "group": "vo_user", "properties": ["NormalUser"], "VO": "vo"}
TOP = "/vo/user/a/alice/check"


class ListingCatalog(DBCatalog):
    """The test catalog with the facade's listDirectory."""

    def listDirectory(self, lfns, verbose=False):
        return self.db.listDirectory(lfns, self.credentials, verbose)


def _bytes(seed: int, size: int = 3000) -> bytes:
    return (bytes(range(seed, seed + 200)) * (size // 200 + 1))[:size]


@pytest.fixture(params=["rclone", "moto"])
def seeded(request, dirac_cfg, tmp_path):
    """S3-A holding one good file and one of each disagreement with a real catalog."""
    server = request.getfixturevalue("rclone_s3_server" if request.param == "rclone" else "moto_server")
    bucket = server.make_bucket()
    dirac_cfg([s3_se_cfg("S3-A", server, bucket)])
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    catalog = ListingCatalog(db, ALICE)
    dm = DataManager(fileCatalog=catalog)
    for name, seed in (("good.dat", 1), ("sub/deep/good2.dat", 2), ("lost.dat", 3), ("size.dat", 4), ("sum.dat", 5)):
        local = tmp_path / f"{seed}.dat"
        local.write_bytes(_bytes(seed))
        assert f"{TOP}/{name}" in dm.putAndRegister(f"{TOP}/{name}", str(local), "S3-A")["Value"]["Successful"]
    client, key = server.client(), TOP.lstrip("/")
    client.delete_object(Bucket=bucket, Key=f"{key}/lost.dat")
    client.put_object(Bucket=bucket, Key=f"{key}/size.dat", Body=_bytes(4, 2999))
    other = _bytes(6)
    client.put_object(
        Bucket=bucket, Key=f"{key}/sum.dat", Body=other, Metadata={"checksum": intAdlerToHex(zlib.adler32(other))}
    )
    client.put_object(Bucket=bucket, Key=f"{key}/dark.dat", Body=b"dark")
    client.put_object(Bucket=bucket, Key=f"{key}/unknown/dir/dark2.dat", Body=b"dark too")
    upload = client.create_multipart_upload(Bucket=bucket, Key=f"{key}/sub/part.dat")["UploadId"]
    yield server, bucket, catalog, upload
    db.close()


def test_each_kind_of_disagreement_is_found(seeded):
    _server, _bucket, catalog, upload = seeded
    report = StorageConsistency("S3-A", fileCatalog=catalog).check(TOP, minAge=0, checksums=True)["Value"]
    assert report.dark == [f"{TOP}/dark.dat", f"{TOP}/unknown/dir/dark2.dat"]
    assert report.lost == [f"{TOP}/lost.dat"]
    assert set(report.mismatches) == {f"{TOP}/size.dat", f"{TOP}/sum.dat"}
    assert "size 2999" in report.mismatches[f"{TOP}/size.dat"] and "adler32" in report.mismatches[f"{TOP}/sum.dat"]
    assert [(u["LFN"], u["UploadId"]) for u in report.staleUploads] == [(f"{TOP}/sub/part.dat", upload)]
    assert not report.problems and report.files == 6


def test_young_objects_and_uploads_are_left_alone(seeded):
    server, _bucket, catalog, _upload = seeded
    report = StorageConsistency("S3-A", fileCatalog=catalog).check(TOP, minAge=3600)["Value"]
    assert report.dark == [] and len(report.recentDark) == 2
    if server.name != "moto":  # moto dates every upload 2010-11-10
        assert report.staleUploads == []


def test_fix_removes_dark_objects_and_aborts_stale_uploads_after_showing_them(seeded, monkeypatch, capsys):
    server, bucket, catalog, upload = seeded
    monkeypatch.setattr(dirac_dms_check_se, "makeChecker", lambda se: StorageConsistency(se, fileCatalog=catalog))
    assert dirac_dms_check_se.main(["S3-A", TOP, "--age", "0", "--checksum"]) == 1
    shown = capsys.readouterr().out
    assert f"DARK {TOP}/dark.dat" in shown and f"LOST {TOP}/lost.dat" in shown and f"UPLOAD {TOP}/sub/part.dat" in shown
    keys = {item["Key"] for item in server.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"{TOP.lstrip('/')}/dark.dat" in keys, "without --fix nothing changes"

    code = dirac_dms_check_se.main(["S3-A", TOP, "--age", "0", "--fix"])
    out = capsys.readouterr().out
    assert "--fix will remove 2 dark object(s) and abort 1 upload(s)" in out
    assert out.index("--fix will remove") < out.index(f"REMOVED {TOP}/dark.dat")
    assert f"ABORTED {TOP}/sub/part.dat {upload}" in out
    assert code == 1, "lost replicas and mismatches remain for the operator"
    keys = {item["Key"] for item in server.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert not any("dark" in key for key in keys)
    report = StorageConsistency("S3-A", fileCatalog=catalog).check(TOP, minAge=0)["Value"]
    assert report.dark == [] and report.staleUploads == [] and report.lost == [f"{TOP}/lost.dat"]


def test_a_foreign_key_with_a_line_break_forges_no_line(moto_server, dirac_cfg, tmp_path, monkeypatch, capsys):
    """Attack: another tool writes a key holding a line separator and a fake report line; it prints escaped."""
    bucket = moto_server.make_bucket()
    dirac_cfg([s3_se_cfg("S3-A", moto_server, bucket)])
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    catalog = ListingCatalog(db, ALICE)
    monkeypatch.setattr(dirac_dms_check_se, "makeChecker", lambda se: StorageConsistency(se, fileCatalog=catalog))
    moto_server.client().put_object(Bucket=bucket, Key=f"{TOP.lstrip('/')}/x\u2028LOST fake.dat", Body=b"x")
    dirac_dms_check_se.main(["S3-A", TOP, "--age", "0"])
    shown = capsys.readouterr()
    assert "DARK" in shown.out and not any(line.startswith("LOST") for line in shown.out.splitlines()), shown
    db.close()


def test_fix_keeps_an_object_registered_since_the_check(seeded):
    *_, catalog, _upload = seeded
    checker = StorageConsistency("S3-A", fileCatalog=catalog)
    report = checker.check(TOP, minAge=0)["Value"]
    late = f"{TOP}/dark.dat"
    entry = {"SE": "S3-A", "Size": 4, "Checksum": "00000001", "GUID": "G", "PFN": ""}
    assert late in catalog.addFile({late: entry})["Value"]["Successful"]
    done = checker.fix(report)["Value"]
    assert late in done["Kept"] and late not in done["Removed"]


def test_bad_arguments(seeded, capsys):
    *_, catalog, _upload = seeded
    assert not StorageConsistency("S3-A", fileCatalog=catalog).check("relative/dir")["OK"]
    assert not StorageConsistency("NO-SUCH-SE", fileCatalog=catalog).check(TOP)["OK"]
    with pytest.raises(SystemExit):
        dirac_dms_check_se.main(["S3-A", TOP, "--age", "-1"])


def test_one_listing_and_at_most_one_catalog_query_per_directory(rclone_s3_server, dirac_cfg, tmp_path):
    """Counted on the wire (fault relay, no fault) and at the catalog: the cost grows with directories, not files."""
    from fault_relay import FaultRelay

    bucket = rclone_s3_server.make_bucket()
    client = rclone_s3_server.client()
    directories = [TOP, f"{TOP}/a", f"{TOP}/a/b", f"{TOP}/c"]
    for directory in directories:
        for number in range(20):
            client.put_object(Bucket=bucket, Key=f"{directory.lstrip('/')}/f{number}.dat", Body=b"x")
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    calls = []

    class Counting(ListingCatalog):
        def listDirectory(self, lfns, verbose=False):
            calls.append(len(lfns))
            return super().listDirectory(lfns, verbose)

    with FaultRelay(rclone_s3_server.host, rclone_s3_server.port) as relay:
        through = type("Through", (), {"host": relay.host, "port": relay.port})
        through.access_key, through.secret_key = rclone_s3_server.access_key, rclone_s3_server.secret_key
        dirac_cfg([s3_se_cfg("S3-A", through, bucket)])
        report = StorageConsistency("S3-A", fileCatalog=Counting(db, ALICE)).check(TOP, minAge=0)["Value"]
        listings = [r for r in relay.requests if "list-type=2" in r.target]
        uploads = [r for r in relay.requests if "uploads" in r.target]
    db.close()
    assert len(report.dark) == 80 and report.directories == 4
    assert len(listings) == len(directories), [r.target for r in relay.requests]
    assert len(uploads) == 1, "the unfinished uploads of the whole tree in one listing"
    assert sum(calls) == len(directories) and len(calls) == 3, "one catalog query per level of the tree"

"""DataManager against real S3 servers (rclone, moto), File SEs and a real FileCatalogDB on SQLite.

The catalog is injected: ``catalog_fixtures.DBCatalog`` gives the FileCatalog facade's
interface over a real ``FileCatalogDB`` file with one user's credentials.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from catalog_fixtures import DBCatalog, systems_cfg
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import fileAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import S3Server, corrupt_object, file_se_cfg, s3_se_cfg

ALICE = {"DN": "/CN=alice", "username": "alice", "group": "vo_user", "properties": ["NormalUser"], "VO": "vo"}
BOB = {"DN": "/CN=bob", "username": "bob", "group": "vo_user", "properties": ["NormalUser"], "VO": "vo"}
HOME = "/vo/user/a/alice"
LFN = f"{HOME}/data/f.dat"
OPERATIONS_CFG = """
Operations
{
  Defaults
  {
    DataManagement
    {
      ThirdPartyProtocols = file, s3
    }
  }
}
"""


class RefusingCatalog(DBCatalog):
    """A real catalog whose addFile / addReplica fail: registration failures after a transfer."""

    def addFile(self, lfns):
        return S_ERROR(DErrno.EIO, "catalog is down for maintenance")

    def addReplica(self, lfns):
        return S_OK({"Successful": {}, "Failed": dict.fromkeys(lfns, "replica table is locked")})


@dataclass
class Env:
    server: S3Server
    buckets: dict[str, str]
    fileRoots: dict[str, Path]
    db: FileCatalogDB
    dm: DataManager
    tmp: Path

    def storage(self, seName: str) -> StorageElement:
        return StorageElement(seName)

    def stored(self, seName: str, lfn: str) -> bool:
        return self.storage(seName).exists(lfn)["Value"]["Successful"][lfn]

    def replicas(self, lfn: str) -> dict:
        return self.db.getReplicas(lfn, ALICE)["Value"]["Successful"].get(lfn)


def _write(path: Path, size: int, seed: int = 7) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((bytes(range(seed, seed + 200)) * (size // 200 + 1))[:size])
    return str(path)


def _ok(result: dict) -> dict:
    assert result["OK"], result
    return result["Value"]


def _environment(server, dirac_cfg, tmp_path, catalogURL: str) -> Env:
    buckets = {"S3-A": server.make_bucket(), "S3-B": server.make_bucket()}
    fileRoots = {"FILE-A": tmp_path / "file-a", "FILE-B": tmp_path / "file-b"}
    for root in fileRoots.values():
        root.mkdir()
    dirac_cfg(
        [
            *(s3_se_cfg(name, server, bucket) for name, bucket in buckets.items()),
            *(file_se_cfg(name, root) for name, root in fileRoots.items()),
            s3_se_cfg("S3-NOBUCKET", server, "no-such-bucket-here"),
            OPERATIONS_CFG,
        ]
    )
    db = FileCatalogDB(catalogURL)
    assert db.isConnected()["OK"], db.connectionError
    return Env(server, buckets, fileRoots, db, DataManager(fileCatalog=DBCatalog(db, ALICE)), tmp_path)


@pytest.fixture
def env(rclone_s3_server, dirac_cfg, tmp_path, catalog_url):
    environment = _environment(rclone_s3_server, dirac_cfg, tmp_path, catalog_url)
    yield environment
    environment.db.close()


@pytest.fixture
def moto_env(moto_server, dirac_cfg, tmp_path):
    environment = _environment(moto_server, dirac_cfg, tmp_path, f"sqlite:///{tmp_path / 'fc.sqlite'}")
    yield environment
    environment.db.close()


# ---------------------------------------------------------------------- upload and download


@pytest.mark.parametrize("seName", ["S3-A", "FILE-A"])
def test_put_and_register_then_get(env, seName):
    source = _write(env.tmp / "src" / "f.dat", 5000)
    value = _ok(env.dm.putAndRegister(LFN, source, seName))
    assert list(value["Successful"]) == [LFN] and not value["Failed"], value
    assert set(value["Successful"][LFN]) == {"put", "register"}

    meta = env.db.getFileMetadata(LFN, ALICE)["Value"]["Successful"][LFN]
    assert meta["Size"] == 5000 and meta["Checksum"] == fileAdler(source) and meta["GUID"]
    assert list(env.replicas(LFN)) == [seName]
    assert env.stored(seName, LFN)

    out = env.tmp / "out"
    got = _ok(env.dm.getFile(LFN, destinationDir=str(out)))
    assert got["Successful"] == {LFN: str(out / "f.dat")}, got
    assert (out / "f.dat").read_bytes() == Path(source).read_bytes()

    replicas = _ok(env.dm.getReplicas([LFN]))["Successful"][LFN]
    assert set(replicas) == {seName} and replicas[seName].endswith(LFN)


def test_put_and_register_on_moto(moto_env):
    source = _write(moto_env.tmp / "src" / "f.dat", 3000)
    value = _ok(moto_env.dm.putAndRegister(LFN, source, "S3-A"))
    assert list(value["Successful"]) == [LFN], value
    assert moto_env.stored("S3-A", LFN)


def test_bulk_put_with_bad_items(env):
    good = {f"{HOME}/bulk/f{i}.dat": _write(env.tmp / "src" / f"f{i}", 100 + i) for i in range(3)}
    lfns = [*good, f"{HOME}/bulk/missing.dat", "relative/name"]
    files = [*good.values(), str(env.tmp / "nope"), str(env.tmp / "nope")]
    value = _ok(env.dm.putAndRegister(lfns, files, "S3-A"))
    assert sorted(value["Successful"]) == sorted(good)
    assert "does not exist" in value["Failed"][f"{HOME}/bulk/missing.dat"]
    assert "absolute" in value["Failed"]["relative/name"]
    assert env.db.exists(f"{HOME}/bulk/missing.dat", ALICE)["Value"]["Successful"][f"{HOME}/bulk/missing.dat"] is False


def test_wrong_given_checksum_uploads_nothing(env):
    source = _write(env.tmp / "src" / "f.dat", 100)
    value = _ok(env.dm.putAndRegister(LFN, source, "S3-A", checksum="00000001"))
    assert "not the given 00000001" in value["Failed"][LFN]
    assert not env.stored("S3-A", LFN)


def test_upload_failure_registers_nothing(env):
    source = _write(env.tmp / "src" / "f.dat", 100)
    value = _ok(env.dm.putAndRegister(LFN, source, "S3-NOBUCKET"))
    assert LFN in value["Failed"] and "nothing registered" in value["Failed"][LFN], value
    assert env.db.exists(LFN, ALICE)["Value"]["Successful"][LFN] is False


def test_registration_failure_leaves_no_object(env):
    source = _write(env.tmp / "src" / "f.dat", 100)
    dm = DataManager(fileCatalog=RefusingCatalog(env.db, ALICE))
    value = _ok(dm.putAndRegister(LFN, source, "S3-A"))
    reason = value["Failed"][LFN]
    assert "catalog is down" in reason and "uploaded copy at S3-A was removed" in reason, reason
    assert not env.stored("S3-A", LFN)
    assert env.db.exists(LFN, ALICE)["Value"]["Successful"][LFN] is False


def test_registered_file_is_not_overwritten(env):
    first = _write(env.tmp / "src" / "a", 100, seed=1)
    second = _write(env.tmp / "src" / "b", 100, seed=2)
    assert _ok(env.dm.putAndRegister(LFN, first, "S3-A"))["Successful"]
    value = _ok(env.dm.putAndRegister(LFN, second, "S3-B"))
    assert "already registered" in value["Failed"][LFN]
    assert not env.stored("S3-B", LFN)


def test_writing_into_another_users_home_is_denied(env):
    source = _write(env.tmp / "src" / "f.dat", 100)
    assert _ok(env.dm.putAndRegister(LFN, source, "S3-A"))["Successful"]
    other = f"{HOME}/data/from-bob.dat"
    dm = DataManager(fileCatalog=DBCatalog(env.db, BOB))
    value = _ok(dm.putAndRegister(other, source, "FILE-A"))
    assert "Permission denied" in value["Failed"][other], value
    assert not env.stored("FILE-A", other)
    assert not list(env.fileRoots["FILE-A"].rglob("*.dat"))


def test_unknown_se_and_bad_arguments_are_errors(env):
    assert not env.dm.putAndRegister(LFN, "x", "NO-SUCH-SE")["OK"]
    assert not env.dm.putAndRegister([LFN], ["a", "b"], "S3-A")["OK"]
    assert not env.dm.getFile(42)["OK"]
    assert not env.dm.replicateAndRegister(LFN, "NO-SUCH-SE")["OK"]


def test_get_file_falls_over_to_a_good_replica(env):
    source = _write(env.tmp / "src" / "f.dat", 3000)
    _ok(env.dm.putAndRegister(LFN, source, "S3-A"))
    _ok(env.dm.replicateAndRegister(LFN, "FILE-A"))
    corrupt_object(env.server, env.buckets["S3-A"], LFN.lstrip("/"))
    out = env.tmp / "out"
    got = _ok(env.dm.getFile(LFN, destinationDir=str(out)))
    assert got["Successful"] == {LFN: str(out / "f.dat")}, got
    assert (out / "f.dat").read_bytes() == Path(source).read_bytes()
    assert [p.name for p in out.iterdir()] == ["f.dat"]

    only = _ok(env.dm.getFile(LFN, destinationDir=str(env.tmp / "out2"), sourceSE="S3-A"))
    assert "corrupt" in only["Failed"][LFN], only
    assert not (env.tmp / "out2" / "f.dat").exists()


# ---------------------------------------------------------------------- replication


@pytest.mark.parametrize(
    ("sourceSE", "destSE"), [("S3-A", "FILE-A"), ("FILE-A", "S3-A"), ("S3-A", "S3-B"), ("FILE-A", "FILE-B")]
)
def test_replicate_through_a_local_copy(env, sourceSE, destSE):
    source = _write(env.tmp / "src" / "f.dat", 70000)
    _ok(env.dm.putAndRegister(LFN, source, sourceSE))
    cache = env.tmp / "cache"
    value = _ok(env.dm.replicateAndRegister(LFN, destSE, localCache=str(cache)))
    assert list(value["Successful"]) == [LFN], value
    assert value["Successful"][LFN]["transfer"] == "local copy"
    assert cache.is_dir() and list(cache.iterdir()) == [], "the temporary folder must be gone"

    assert set(env.replicas(LFN)) == {sourceSE, destSE}
    stored = env.storage(destSE).getFileMetadata(LFN)["Value"]["Successful"][LFN]
    assert stored["Size"] == 70000 and stored["Checksum"] == fileAdler(source)
    out = env.tmp / "out"
    _ok(env.dm.getFile(LFN, destinationDir=str(out), sourceSE=destSE))
    assert (out / "f.dat").read_bytes() == Path(source).read_bytes()

    again = _ok(env.dm.replicateAndRegister(LFN, destSE))
    assert again["Successful"][LFN]["transfer"].startswith("none")


def test_bulk_replication_with_source_choice(env):
    files = {f"{HOME}/bulk/f{i}.dat": _write(env.tmp / "src" / str(i) / "same.dat", 1000 + i) for i in range(4)}
    _ok(env.dm.putAndRegister(files, None, "S3-A"))
    missing = f"{HOME}/bulk/never-registered.dat"
    value = _ok(env.dm.replicateAndRegister([*files, missing], "FILE-A", sourceSE="S3-A"))
    assert sorted(value["Successful"]) == sorted(files), value
    assert "No such file" in value["Failed"][missing]
    wrongSource = _ok(env.dm.replicateAndRegister(list(files)[0], "S3-B", sourceSE="FILE-B"))
    assert "no replica at FILE-B" in wrongSource["Failed"][list(files)[0]]


def test_corrupted_s3_object_is_detected_and_nothing_registered(env):
    source = _write(env.tmp / "src" / "f.dat", 4096)
    _ok(env.dm.putAndRegister(LFN, source, "S3-A"))
    corrupt_object(env.server, env.buckets["S3-A"], LFN.lstrip("/"))
    cache = env.tmp / "cache"
    value = _ok(env.dm.replicateAndRegister(LFN, "FILE-A", localCache=str(cache)))
    assert LFN in value["Failed"] and "corrupt" in value["Failed"][LFN], value
    assert "nothing registered" in value["Failed"][LFN]
    assert set(env.replicas(LFN)) == {"S3-A"}
    assert not env.stored("FILE-A", LFN)
    assert list(cache.iterdir()) == []


def test_copy_not_matching_the_catalog_is_refused(env):
    """The storage's own checksum is fine but the catalog disagrees: the local copy check catches it."""
    source = _write(env.tmp / "src" / "f.dat", 2048)
    _ok(env.storage("S3-A").putFile({LFN: source}))
    entry = {"SE": "S3-A", "PFN": "", "Size": 2048, "Checksum": "0badc0de", "GUID": "G-1"}
    _ok(env.db.addFile({LFN: entry}, ALICE))
    value = _ok(env.dm.replicateAndRegister(LFN, "S3-B", localCache=str(env.tmp / "cache")))
    assert "the catalog says 0badc0de" in value["Failed"][LFN], value
    assert not env.stored("S3-B", LFN)
    assert set(env.replicas(LFN)) == {"S3-A"}


def test_replica_registration_failure_removes_the_new_copy(env):
    source = _write(env.tmp / "src" / "f.dat", 500)
    _ok(env.dm.putAndRegister(LFN, source, "S3-A"))
    dm = DataManager(fileCatalog=RefusingCatalog(env.db, ALICE))
    value = _ok(dm.replicateAndRegister(LFN, "FILE-A"))
    assert "replica table is locked" in value["Failed"][LFN] and "was removed" in value["Failed"][LFN], value
    assert not env.stored("FILE-A", LFN)
    assert set(env.replicas(LFN)) == {"S3-A"}


def test_s3_is_never_a_third_party_protocol(env, caplog):
    logger = logging.getLogger("DIRAC.DataManager")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="DIRAC.DataManager")
    try:
        assert env.dm.thirdPartyProtocols() == ["file"]
    finally:
        logger.removeHandler(caplog.handler)
    assert any("S3 cannot do third-party copy" in record.getMessage() for record in caplog.records)


# ---------------------------------------------------------------------- removal and URLs


def test_remove_replica_then_file(env):
    source = _write(env.tmp / "src" / "f.dat", 300)
    _ok(env.dm.putAndRegister(LFN, source, "S3-A"))
    only = _ok(env.dm.removeReplica("S3-A", LFN))
    assert "only replica" in only["Failed"][LFN]
    assert env.stored("S3-A", LFN)

    _ok(env.dm.replicateAndRegister(LFN, "FILE-A"))
    assert _ok(env.dm.removeReplica("S3-A", [LFN]))["Successful"] == {LFN: True}
    assert not env.stored("S3-A", LFN) and env.stored("FILE-A", LFN)
    assert set(env.replicas(LFN)) == {"FILE-A"}
    assert _ok(env.dm.removeReplica("S3-A", LFN))["Successful"] == {LFN: True}  # nothing left there

    _ok(env.dm.replicateAndRegister(LFN, "S3-B"))
    assert _ok(env.dm.removeFile(LFN))["Successful"] == {LFN: True}
    assert not env.stored("FILE-A", LFN) and not env.stored("S3-B", LFN)
    assert env.db.exists(LFN, ALICE)["Value"]["Successful"][LFN] is False
    assert _ok(env.dm.removeFile([LFN]))["Successful"] == {LFN: True}  # already gone


def test_remove_file_denied_for_another_user(env):
    source = _write(env.tmp / "src" / "f.dat", 300)
    _ok(env.dm.putAndRegister(LFN, source, "S3-A"))
    value = _ok(DataManager(fileCatalog=DBCatalog(env.db, BOB)).removeFile(LFN))
    assert "Permission denied" in value["Failed"][LFN]
    assert env.stored("S3-A", LFN)


def test_replica_access_url(env):
    source = _write(env.tmp / "src" / "f.dat", 1234)
    _ok(env.dm.putAndRegister(LFN, source, "S3-A"))
    urls = _ok(env.dm.getReplicaAccessUrl([LFN], "S3-A", protocol="http"))["Successful"]
    assert "X-Amz-Expires=86400" in urls[LFN]
    assert requests.get(urls[LFN], timeout=10).content == Path(source).read_bytes()
    native = _ok(env.dm.getReplicaAccessUrl(LFN, "S3-A"))["Successful"][LFN]
    assert native.startswith("s3://")
    elsewhere = _ok(env.dm.getReplicaAccessUrl(LFN, "FILE-A"))
    assert "no replica at FILE-A" in elsewhere["Failed"][LFN]
    assert os.path.exists(source)


# ---------------------------------------------------------------------- the dirac-dms-* commands

COMMANDS = [
    "dirac_dms_add_file",
    "dirac_dms_get_file",
    "dirac_dms_replicate_lfn",
    "dirac_dms_remove_files",
    "dirac_dms_remove_replicas",
    "dirac_dms_lfn_replicas",
    "dirac_dms_lfn_metadata",
    "dirac_dms_lfn_accessURL",
]


def _command(name: str):
    return importlib.import_module(f"DIRAC.DataManagementSystem.scripts.{name}").main


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        _command(name)(["--help"])
    assert exit_.value.code == 0
    assert "usage: dirac-dms-" in capsys.readouterr().out


@pytest.fixture
def commands(env, monkeypatch, capsys):
    """Run a command in-process with the test catalog; returns (exit code, output lines)."""
    from DIRAC.DataManagementSystem.scripts import _common

    monkeypatch.setattr(_common, "makeDataManager", lambda: DataManager(fileCatalog=DBCatalog(env.db, ALICE)))

    def run(name: str, *argv: str) -> tuple[int, list[str]]:
        capsys.readouterr()
        code = _command(name)(list(argv))
        return code, capsys.readouterr().out.splitlines()

    return run


def test_commands_round_trip(env, commands):
    first, second = f"{HOME}/cmd/a.dat", f"{HOME}/cmd/b.dat"
    listing = env.tmp / "uploads.txt"
    listing.write_text(
        f"{first} {_write(env.tmp / 'src' / 'a.dat', 300)} S3-A\n"
        f"# a comment\n\n{second} {_write(env.tmp / 'src' / 'b.dat', 400)} S3-A GUID-B\n"
    )
    code, lines = commands("dirac_dms_add_file", str(listing))
    assert code == 0 and lines == [
        f"OK {first} uploaded to S3-A and registered",
        f"OK {second} uploaded to S3-A and registered",
    ]

    lfnList = env.tmp / "lfns.txt"
    lfnList.write_text(f"{first}\n{second}\n")
    code, lines = commands("dirac_dms_replicate_lfn", str(lfnList), "FILE-A", "S3-A", str(env.tmp / "cache"))
    assert code == 0 and len(lines) == 2 and all("local copy" in line for line in lines), lines
    assert list((env.tmp / "cache").iterdir()) == []

    code, lines = commands("dirac_dms_lfn_replicas", first)
    assert code == 0 and lines[0].startswith(f"OK {first} ") and "S3-A=s3://" in lines[0] and "FILE-A=" in lines[0]

    code, lines = commands("dirac_dms_lfn_metadata", second)
    assert code == 0 and "Size=400" in lines[0] and "GUID=GUID-B" in lines[0] and "Mode=0o644" in lines[0]

    out = env.tmp / "out"
    code, lines = commands("dirac_dms_get_file", str(lfnList), "-D", str(out))
    assert code == 0 and lines == [f"OK {first} -> {out / 'a.dat'}", f"OK {second} -> {out / 'b.dat'}"]
    assert (out / "b.dat").read_bytes() == (env.tmp / "src" / "b.dat").read_bytes()

    code, lines = commands("dirac_dms_lfn_accessURL", first, "S3-A", "http")
    assert code == 0 and lines[0].startswith("http://") and "X-Amz-Signature=" in lines[0]
    assert requests.get(lines[0], timeout=10).content == (env.tmp / "src" / "a.dat").read_bytes()

    code, lines = commands("dirac_dms_remove_replicas", str(lfnList), "S3-A")
    assert code == 0 and lines == [f"OK {lfn} replica removed from S3-A" for lfn in (first, second)]
    code, lines = commands("dirac_dms_remove_replicas", first, "FILE-A")
    assert code == 1 and lines[0].startswith(f"FAILED {first} FILE-A: FILE-A holds the only replica")

    code, lines = commands("dirac_dms_remove_files", first, second)
    assert code == 0 and lines == [f"OK {first} removed", f"OK {second} removed"]
    assert env.db.exists(first, ALICE)["Value"]["Successful"][first] is False


def test_command_exit_codes(env, commands):
    missing = f"{HOME}/cmd/missing.dat"
    code, lines = commands("dirac_dms_get_file", missing, "-D", str(env.tmp / "out"))
    assert code == 1 and lines[0].startswith(f"FAILED {missing} ") and "No such file" in lines[0]
    code, lines = commands("dirac_dms_replicate_lfn", missing, "NO-SUCH-SE")
    assert code == 2 and lines == []
    code, _lines = commands("dirac_dms_add_file", missing, "a", "b", "c", "d")
    assert code == 2


# ---------------------------------------------------------------------- end to end over the catalog service

TEST_VO_HOME = "/testvo/user/a/alice"


@pytest.fixture(scope="module")
def catalog_service(test_ca, tmp_path_factory):
    """The FileCatalog HTTPS service on a fresh SQLite file: (cfg text for clients, user proxies)."""
    from rpc_fixtures import ServiceLauncher, service_cfg

    folder = tmp_path_factory.mktemp("dm-filecatalog")
    cfgPath = folder / "dirac.cfg"
    cfgPath.write_text(service_cfg(test_ca, {}, extra=systems_cfg(folder)))
    launcher = ServiceLauncher()
    service = launcher.start("DataManagement/FileCatalog", cfgPath)
    catalogs = "Resources\n{\n  FileCatalogs\n  {\n    FileCatalog\n    {\n"
    catalogs += f"      CatalogType = FileCatalog\n      CatalogURL = {service.url()}\n      Master = True\n"
    catalogs += "    }\n  }\n}\n"
    proxies = {user: str(test_ca.proxy(user, "dirac_user", path=folder / f"{user}.pem")) for user in ("alice", "bob")}
    try:
        yield cfgPath.read_text() + catalogs, proxies
    finally:
        launcher.stopAll()


def test_commands_end_to_end_over_the_catalog_service(
    catalog_service, rclone_s3_server, dirac_cfg, tmp_path, monkeypatch
):
    """The commands with their default DataManager: FileCatalog facade -> HTTPS service, real S3 and File SEs."""
    from DIRAC.DataManagementSystem.scripts import (
        dirac_dms_add_file,
        dirac_dms_get_file,
        dirac_dms_remove_files,
        dirac_dms_replicate_lfn,
    )

    cfgText, proxies = catalog_service
    bucket = rclone_s3_server.make_bucket()
    (tmp_path / "fa").mkdir()
    dirac_cfg([cfgText, s3_se_cfg("S3-A", rclone_s3_server, bucket), file_se_cfg("FILE-A", tmp_path / "fa")])
    lfn = f"{TEST_VO_HOME}/e2e/f.dat"
    source = _write(tmp_path / "src" / "f.dat", 9000)

    monkeypatch.setenv("X509_USER_PROXY", proxies["bob"])
    assert dirac_dms_add_file.main([lfn, source, "S3-A"]) == 1  # bob may not write into alice's home
    assert not StorageElement("S3-A").exists(lfn)["Value"]["Successful"][lfn]

    monkeypatch.setenv("X509_USER_PROXY", proxies["alice"])
    assert dirac_dms_add_file.main([lfn, source, "S3-A"]) == 0
    assert dirac_dms_replicate_lfn.main([lfn, "FILE-A", "S3-A", str(tmp_path / "cache")]) == 0
    assert list((tmp_path / "cache").iterdir()) == []
    replicas = _ok(DataManager().getReplicas(lfn))["Successful"][lfn]
    assert set(replicas) == {"S3-A", "FILE-A"}
    assert dirac_dms_get_file.main([lfn, "-D", str(tmp_path / "out"), "-d"]) == 0
    assert (tmp_path / "out" / "f.dat").read_bytes() == Path(source).read_bytes()
    assert dirac_dms_remove_files.main([lfn]) == 0
    assert not StorageElement("FILE-A").exists(lfn)["Value"]["Successful"][lfn]
    assert _ok(DataManager().getReplicas(lfn))["Failed"]


def test_overwrite_replaces_the_registered_file(env):
    first = _write(env.tmp / "src" / "a", 100, seed=1)
    second = _write(env.tmp / "src" / "b", 150, seed=2)
    _ok(env.dm.putAndRegister(LFN, first, "S3-A"))
    _ok(env.dm.replicateAndRegister(LFN, "FILE-A"))
    value = _ok(env.dm.putAndRegister(LFN, second, "S3-B", overwrite=True))
    assert list(value["Successful"]) == [LFN], value
    assert set(env.replicas(LFN)) == {"S3-B"}
    assert not env.stored("S3-A", LFN) and not env.stored("FILE-A", LFN)
    assert env.db.getFileMetadata(LFN, ALICE)["Value"]["Successful"][LFN]["Size"] == 150


def test_installed_commands_run_as_processes(tmp_path):
    """The console scripts point at the main() functions and pass their exit codes on."""
    import subprocess
    import sys

    bin_ = Path(sys.executable).parent
    shown = subprocess.run([bin_ / "dirac-dms-lfn-accessURL", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "LFN SE [PROTOCOL]" in shown.stdout
    binary = tmp_path / "lfns.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    bad = subprocess.run([bin_ / "dirac-dms-lfn-replicas", str(binary)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot read the LFN list" in bad.stderr


def test_many_lfns_go_in_chunks_behind_a_progress_bar(capsys):
    from DIRAC.DataManagementSystem.scripts import _common

    calls = []

    def call(chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            return S_ERROR(DErrno.EIO, "service busy")
        return S_OK({"Successful": dict.fromkeys(chunk[1:], True), "Failed": {chunk[0]: "nope"}})

    lfns = [f"{HOME}/many/f{i}" for i in range(2 * _common.CHUNK + 7)]
    value = _ok(_common.bulkInChunks(call, lfns, "test", progress=True))
    assert calls == [_common.CHUNK, _common.CHUNK, 7]
    assert len(value["Successful"]) == _common.CHUNK - 1 + 6
    assert "service busy" in value["Failed"][lfns[_common.CHUNK + 3]] and value["Failed"][lfns[0]] == "nope"
    assert "test" in capsys.readouterr().err
    assert _ok(_common.bulkInChunks(call, lfns[:3], progress=True))["Failed"] == {lfns[0]: "nope"}

"""FileCatalogDB on real SQLite, MariaDB and PostgreSQL databases: every method, bad input, bulk shape, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest

from catalog_fixtures import run_processes
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

URSULA = {"DN": "/CN=ursula", "username": "ursula", "group": "lhcb_user", "properties": ["NormalUser"], "VO": "lhcb"}
VICTOR = {"DN": "/CN=victor", "username": "victor", "group": "lhcb_user", "properties": ["NormalUser"], "VO": "lhcb"}
ADMIN = {
    "DN": "/CN=adm",
    "username": "adm",
    "group": "lhcb_admin",
    "properties": ["FileCatalogManagement"],
    "VO": "lhcb",
}
HOME = "/lhcb/user/u/ursula"


def fileInfo(size: int = 10, checksum: str = "0000abcd", se: str = "SE-A", **extra) -> dict:
    return {"SE": se, "Size": size, "Checksum": checksum, "PFN": "", **extra}


def ok(result: dict) -> dict:
    assert result["OK"], result
    return result["Value"]


def test_add_file_and_read_back(db):
    lfn = f"{HOME}/run1/file.dat"
    value = ok(db.addFile({lfn: fileInfo(size=42, checksum="ABCD", GUID="G-1", PFN="s3://x/y")}, URSULA))
    assert value == {"Successful": {lfn: True}, "Failed": {}}

    meta = ok(db.getFileMetadata(lfn, URSULA))["Successful"][lfn]
    assert meta["Size"] == 42
    assert meta["Checksum"] == "0000abcd"  # adler32 normalised to 8 lower-case digits
    assert meta["ChecksumType"] == "Adler32"
    assert meta["GUID"] == "G-1"
    assert (meta["Owner"], meta["OwnerGroup"], meta["Mode"], meta["Status"]) == (
        "ursula",
        "lhcb_user",
        0o644,
        "AprioriGood",
    )
    assert meta["CreationDate"] and meta["ModificationDate"]

    assert ok(db.getReplicas([lfn], URSULA)) == {"Successful": {lfn: {"SE-A": "s3://x/y"}}, "Failed": {}}
    assert ok(db.getFileSize(lfn, URSULA))["Successful"] == {lfn: 42}
    assert ok(db.exists([lfn, f"{HOME}/run1", f"{HOME}/nothing"], URSULA))["Successful"] == {
        lfn: True,
        f"{HOME}/run1": True,
        f"{HOME}/nothing": False,
    }
    assert ok(db.isFile([lfn, f"{HOME}/run1"], URSULA))["Successful"] == {lfn: True, f"{HOME}/run1": False}
    assert ok(db.isDirectory([lfn, f"{HOME}/run1"], URSULA))["Successful"] == {lfn: False, f"{HOME}/run1": True}


def test_parents_created_with_the_right_owners(db):
    ok(db.addFile({f"{HOME}/a/b/f": fileInfo()}, URSULA))
    meta = ok(db.getDirectoryMetadata(["/", "/lhcb", "/lhcb/user", "/lhcb/user/u", HOME, f"{HOME}/a"], URSULA))
    owners = {path: (m["Owner"], m["OwnerGroup"], m["Mode"]) for path, m in meta["Successful"].items()}
    assert owners == {
        "/": ("root", "root", 0o755),
        "/lhcb": ("root", "root", 0o755),
        "/lhcb/user": ("root", "root", 0o755),
        "/lhcb/user/u": ("root", "root", 0o755),
        HOME: ("ursula", "lhcb_user", 0o755),
        f"{HOME}/a": ("ursula", "lhcb_user", 0o755),
    }


def test_re_register_same_file_adds_replica_and_different_metadata_fails(db):
    lfn = f"{HOME}/f"
    ok(db.addFile({lfn: fileInfo(GUID="G")}, URSULA))
    assert ok(db.addFile({lfn: fileInfo(GUID="G", se="SE-B")}, URSULA))["Successful"] == {lfn: True}
    assert set(ok(db.getReplicas(lfn, URSULA))["Successful"][lfn]) == {"SE-A", "SE-B"}
    failed = ok(db.addFile({lfn: fileInfo(size=11, GUID="G")}, URSULA))["Failed"]
    assert "different metadata (Size)" in failed[lfn]
    failed = ok(db.addFile({lfn: fileInfo(checksum="1", GUID="OTHER")}, URSULA))["Failed"]
    assert "Checksum" in failed[lfn] and "GUID" in failed[lfn]


def test_replicas_add_remove(db):
    lfn = f"{HOME}/f"
    ok(db.addFile({lfn: fileInfo()}, URSULA))
    assert ok(db.addReplica({lfn: {"SE": "SE-B", "PFN": "file:///b"}}, URSULA))["Successful"] == {lfn: True}
    assert ok(db.addReplica({lfn: {"SE": "SE-B", "PFN": "file:///b2"}}, URSULA))["Successful"] == {lfn: True}
    assert ok(db.getReplicas(lfn, URSULA))["Successful"][lfn] == {"SE-A": "", "SE-B": "file:///b2"}
    missing = f"{HOME}/missing"
    assert "No such file" in ok(db.addReplica({missing: {"SE": "SE-B"}}, URSULA))["Failed"][missing]

    assert ok(db.removeReplica({lfn: {"SE": "SE-A"}, missing: {"SE": "SE-A"}}, URSULA))["Successful"] == {
        lfn: True,
        missing: True,
    }
    assert ok(db.getReplicas(lfn, URSULA))["Successful"][lfn] == {"SE-B": "file:///b2"}
    assert ok(db.removeReplica({lfn: {"SE": "SE-A"}}, URSULA))["Successful"] == {lfn: True}  # already gone


def test_remove_file(db):
    lfns = [f"{HOME}/f{i}" for i in range(5)]
    ok(db.addFile({lfn: fileInfo() for lfn in lfns}, URSULA))
    assert ok(db.removeFile(lfns + [f"{HOME}/never"], URSULA))["Failed"] == {}
    assert ok(db.exists(lfns, URSULA))["Successful"] == dict.fromkeys(lfns, False)
    assert ok(db.getCatalogCounters())["Replicas"] == 0
    failed = ok(db.removeFile(f"{HOME}/", URSULA))["Failed"]
    assert "Permission denied" in failed[f"{HOME}/"]  # the home's parent belongs to root
    ok(db.createDirectory(f"{HOME}/sub", URSULA))
    assert "Is a directory" in ok(db.removeFile(f"{HOME}/sub", URSULA))["Failed"][f"{HOME}/sub"]


def test_list_directory_shape(db):
    ok(db.addFile({f"{HOME}/d/f1": fileInfo(), f"{HOME}/d/f2": fileInfo(se="SE-B")}, URSULA))
    ok(db.createDirectory(f"{HOME}/d/sub", URSULA))
    listing = ok(db.listDirectory([f"{HOME}/d"], URSULA, verbose=True))["Successful"][f"{HOME}/d"]
    assert set(listing["Files"]) == {f"{HOME}/d/f1", f"{HOME}/d/f2"}
    assert listing["Files"][f"{HOME}/d/f2"]["MetaData"]["Size"] == 10
    assert listing["Files"][f"{HOME}/d/f2"]["Replicas"] == {"SE-B": ""}
    assert list(listing["SubDirs"]) == [f"{HOME}/d/sub"]
    assert listing["SubDirs"][f"{HOME}/d/sub"]["Owner"] == "ursula"
    failed = ok(db.listDirectory([f"{HOME}/d/f1", "/nope"], URSULA))["Failed"]
    assert "Not a directory" in failed[f"{HOME}/d/f1"] and "No such" in failed["/nope"]


def test_create_and_remove_directory(db):
    assert ok(db.createDirectory([f"{HOME}/x/y", f"{HOME}/x"], URSULA))["Successful"] == {
        f"{HOME}/x/y": True,
        f"{HOME}/x": True,
    }
    assert ok(db.createDirectory(f"{HOME}/x", URSULA))["Successful"] == {f"{HOME}/x": True}  # exists: fine
    ok(db.addFile({f"{HOME}/x/y/f": fileInfo()}, URSULA))
    assert "File exists" in ok(db.createDirectory(f"{HOME}/x/y/f", URSULA))["Failed"][f"{HOME}/x/y/f"]
    assert "not empty" in ok(db.removeDirectory(f"{HOME}/x", URSULA))["Failed"][f"{HOME}/x"]
    ok(db.removeFile(f"{HOME}/x/y/f", URSULA))
    # parent and child in one call: the child goes first, then the parent is empty
    assert ok(db.removeDirectory([f"{HOME}/x", f"{HOME}/x/y"], URSULA))["Failed"] == {}
    assert ok(db.isDirectory(f"{HOME}/x", URSULA))["Successful"] == {f"{HOME}/x": False}
    assert "cannot be removed" in ok(db.removeDirectory("/", ADMIN))["Failed"]["/"]


def test_file_in_the_way(db):
    ok(db.addFile({f"{HOME}/f": fileInfo()}, URSULA))
    failed = ok(db.addFile({f"{HOME}/f/g": fileInfo()}, URSULA))["Failed"]
    assert failed == {f"{HOME}/f/g": f"Not a directory: {HOME}/f is a file"}
    failed = ok(db.addFile({HOME: fileInfo()}, URSULA))["Failed"]
    assert "Is a directory" in failed[HOME]
    # one LFN of the request needs another as its directory
    value = ok(db.addFile({f"{HOME}/p": fileInfo(), f"{HOME}/p/q": fileInfo()}, URSULA))
    assert value["Successful"] == {f"{HOME}/p/q": True}
    assert "parent directory of another LFN" in value["Failed"][f"{HOME}/p"]


@pytest.mark.parametrize(
    "lfn, reason",
    [
        ("relative/path", "must be absolute"),
        ("", "empty LFN"),
        (f"{HOME}/../victor/f", "'..'"),
        (f"{HOME}//f", "empty"),
        (f"{HOME}/./f", "'.'"),
        (f"{HOME}/bad\nname", "control characters"),
        (f"{HOME}/" + "n" * 300, "longer than 255"),
    ],
)
def test_bad_lfns_fail_and_write_nothing(db, lfn, reason):
    value = ok(db.addFile({lfn: fileInfo(), f"{HOME}/good": fileInfo()}, URSULA))
    assert reason in value["Failed"][lfn]
    assert value["Successful"] == {f"{HOME}/good": True}
    assert ok(db.getCatalogCounters())["Files"] == 1


@pytest.mark.parametrize(
    "info, reason",
    [
        ("not a dict", "must be a dict"),
        ({"SE": "A", "Checksum": "1"}, "Size must be a non-negative integer"),
        ({"SE": "A", "Size": -1, "Checksum": "1"}, "Size must be a non-negative integer"),
        ({"SE": "A", "Size": True, "Checksum": "1"}, "Size must be a non-negative integer"),
        ({"SE": "A", "Size": "10", "Checksum": "1"}, "Size must be a non-negative integer"),
        ({"Size": 1, "Checksum": "1"}, "missing SE"),
        ({"SE": 3, "Size": 1, "Checksum": "1"}, "SE must be a string"),
        ({"SE": "A", "Size": 1}, "missing Checksum"),
        ({"SE": "A", "Size": 1, "Checksum": "xyz"}, "not an adler32"),
        ({"SE": "A", "Size": 1, "Checksum": "123456789"}, "not an adler32"),
    ],
)
def test_bad_file_info(db, info, reason):
    lfn = f"{HOME}/f"
    assert reason in ok(db.addFile({lfn: info}, URSULA))["Failed"][lfn]
    assert ok(db.getCatalogCounters()) == {"Directories": 1, "Files": 0, "Replicas": 0}


def test_wrong_argument_types(db):
    result = db.addFile(42, URSULA)
    assert not result["OK"] and "must be a str, a list or a dict" in result["Message"]
    assert not db.exists([["nested"]], URSULA)["OK"]
    value = ok(db.exists([3, "/"], URSULA))
    assert "must be a string" in value["Failed"][3] and value["Successful"] == {"/": True}
    assert ok(db.exists([], URSULA)) == {"Successful": {}, "Failed": {}}
    assert "integer between 0 and 0o777" in ok(db.changePathMode({HOME: "755"}, ADMIN))["Failed"][HOME]
    assert "integer between 0 and 0o777" in ok(db.changePathMode({HOME: 0o1000}, ADMIN))["Failed"][HOME]
    assert "blanks" in ok(db.changePathOwner({HOME: "a b"}, ADMIN))["Failed"][HOME]


def test_caller_keys_are_kept_and_duplicates_resolved(db):
    value = ok(db.createDirectory([f"{HOME}/k/", f"{HOME}/k"], URSULA))
    assert value["Successful"] == {f"{HOME}/k/": True, f"{HOME}/k": True}
    value = ok(db.addFile({f"{HOME}/z": fileInfo(size=1), f"{HOME}/z/": fileInfo(size=2)}, URSULA))
    assert value["Successful"] == {} and len(value["Failed"]) == 2
    assert "more than once" in value["Failed"][f"{HOME}/z"]


def test_change_owner_group_mode(db):
    lfn = f"{HOME}/f"
    ok(db.addFile({lfn: fileInfo()}, URSULA))
    assert ok(db.changePathMode({lfn: 0o600}, URSULA))["Successful"] == {lfn: True}
    assert ok(db.getFileMetadata(lfn, URSULA))["Successful"][lfn]["Mode"] == 0o600
    assert "Permission denied" in ok(db.getFileMetadata(lfn, VICTOR))["Failed"][lfn]
    # owners may not give files away; managers may
    assert "only managers" in ok(db.changePathOwner({lfn: "victor"}, URSULA))["Failed"][lfn]
    assert "Permission denied" in ok(db.changePathMode({lfn: 0o666}, VICTOR))["Failed"][lfn]
    assert ok(db.changePathOwner({lfn: {"Owner": "victor"}}, ADMIN))["Successful"] == {lfn: True}
    assert ok(db.getFileMetadata(lfn, ADMIN))["Successful"][lfn]["Owner"] == "victor"
    # chgrp: only to a group of the owner (here: the current group, no Registry resolver)
    assert "Permission denied" in ok(db.changePathGroup({HOME: "lhcb_prod"}, URSULA))["Failed"][HOME]
    assert ok(db.changePathGroup({HOME: "lhcb_user"}, URSULA))["Successful"] == {HOME: True}
    assert "No such file" in ok(db.changePathMode({f"{HOME}/nope": 0o700}, URSULA))["Failed"][f"{HOME}/nope"]


def test_groups_resolver_allows_chgrp_to_own_groups(tmp_path):
    catalog = FileCatalogDB(
        f"sqlite:///{tmp_path / 'g.sqlite'}", groupsResolver=lambda user: ["lhcb_user", "lhcb_prod"]
    )
    ok(catalog.createDirectory(HOME, URSULA))
    assert ok(catalog.changePathGroup({HOME: "lhcb_prod"}, URSULA))["Successful"] == {HOME: True}
    assert ok(catalog.changePathGroup({HOME: "atlas_user"}, URSULA))["Failed"]
    catalog.close()


def test_recursive_change(db):
    ok(db.addFile({f"{HOME}/r/a/f1": fileInfo(), f"{HOME}/r/f2": fileInfo()}, URSULA))
    assert ok(db.changePathMode({f"{HOME}/r": 0o750}, URSULA, True))["Successful"] == {f"{HOME}/r": True}
    modes = {
        path: meta["Mode"]
        for path, meta in ok(db.getFileMetadata([f"{HOME}/r/a/f1", f"{HOME}/r/f2"], URSULA))["Successful"].items()
    }
    assert modes == {f"{HOME}/r/a/f1": 0o750, f"{HOME}/r/f2": 0o750}
    assert ok(db.getDirectoryMetadata(f"{HOME}/r/a", URSULA))["Successful"][f"{HOME}/r/a"]["Mode"] == 0o750
    # a sibling whose name starts like the changed directory is untouched
    ok(db.createDirectory(f"{HOME}/r_other", URSULA))
    assert ok(db.getDirectoryMetadata(f"{HOME}/r_other", URSULA))["Successful"][f"{HOME}/r_other"]["Mode"] == 0o755


def test_has_access_op_types(db):
    lfn = f"{HOME}/f"
    ok(db.addFile({lfn: fileInfo()}, URSULA))
    assert ok(db.hasAccess([lfn], "removeFile", URSULA))["Successful"] == {lfn: True}
    assert ok(db.hasAccess([lfn], "removeFile", VICTOR))["Successful"] == {lfn: False}
    assert ok(db.hasAccess({lfn: True}, "getFileMetadata", VICTOR))["Successful"] == {lfn: True}
    # DIRAC's older argument order (opType, paths)
    assert ok(db.hasAccess("Write", lfn, VICTOR))["Successful"] == {lfn: False}
    result = db.hasAccess(lfn, "fly", URSULA)
    assert not result["OK"] and "Unknown operation type" in result["Message"]
    assert "must be absolute" in ok(db.hasAccess(["x"], "Read", URSULA))["Failed"]["x"]
    perms = ok(db.getPathPermissions(lfn, VICTOR))["Successful"][lfn]
    assert perms == {"Read": True, "Write": False, "Execute": False}  # POSIX: a 0644 file has no x bit
    assert ok(db.getPathPermissions(HOME, VICTOR))["Successful"][HOME] == {
        "Read": True,
        "Write": False,
        "Execute": True,
    }


def test_not_connected_gives_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    catalog = FileCatalogDB(f"sqlite:///{blocker}/sub/fc.sqlite")
    result = catalog.addFile({"/a": fileInfo()}, URSULA)
    assert not result["OK"] and "not connected" in result["Message"]


def test_database_is_a_wal_sqlite_file(tmp_path):
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    ok(db.createDirectory(HOME, URSULA))
    db.close()
    connection = sqlite3.connect(tmp_path / "fc.sqlite")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        paths = {row[0] for row in connection.execute("SELECT Path FROM FC_Directories")}
    finally:
        connection.close()
    assert HOME in paths


def test_default_url_from_configuration(tmp_path, monkeypatch):
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import cfgWithOption, gConfigurationData
    from DIRAC.DataManagementSystem.DB.FileCatalogDB import getDefaultURL

    monkeypatch.setenv("DIRACSYSCONFIG", str(tmp_path / "none.cfg"))
    gConfigurationData.reset()
    try:
        gConfigurationData.mergeLocal(cfgWithOption("/LocalSite/InstancePath", str(tmp_path)))
        assert getDefaultURL() == f"sqlite:///{tmp_path / 'work' / 'FileCatalogDB.sqlite'}"
        url = f"sqlite:///{tmp_path / 'other.sqlite'}"
        gConfigurationData.mergeLocal(cfgWithOption("/Systems/DataManagement/Databases/FileCatalogDB/URL", url))
        assert getDefaultURL() == url
    finally:
        gConfigurationData.reset()


# ---------------------------------------------------------------- concurrency


def _addMany(url: str, prefix: str, count: int, queue) -> None:
    catalog = FileCatalogDB(url)
    failures = {}
    for start in range(0, count, 20):  # many small transactions to interleave with the other writer
        lfns = {f"{HOME}/shared/{prefix}{i}": fileInfo(size=i) for i in range(start, start + 20)}
        result = catalog.addFile(lfns, URSULA)
        if not result["OK"]:
            failures[prefix + str(start)] = result["Message"]
        else:
            failures.update(result["Value"]["Failed"])
    catalog.close()
    queue.put(failures)


def test_two_processes_lose_nothing(catalog_url):
    url = catalog_url
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_addMany, args=(url, name, 200, queue)) for name in ("a", "b")]
    failures = run_processes(processes, queue, timeout=120)
    assert failures == [{}, {}]
    catalog = FileCatalogDB(url)
    listing = ok(catalog.listDirectory(f"{HOME}/shared", URSULA))["Successful"][f"{HOME}/shared"]
    catalog.close()
    assert len(listing["Files"]) == 400


def test_threads_creating_the_same_tree(db):
    errors = []

    def worker(index: int) -> None:
        for round_ in range(10):
            result = db.addFile({f"{HOME}/t/{round_}/w{index}": fileInfo()}, URSULA)
            if not result["OK"] or result["Value"]["Failed"]:
                errors.append(result)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert ok(db.getCatalogCounters())["Files"] == 40

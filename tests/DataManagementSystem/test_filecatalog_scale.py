"""FileCatalogDB at production scale, on SQLite, MariaDB and PostgreSQL: pages, schema version,
byte-wise names, integrity errors, a writer killed mid-transaction, the URL's password source."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
from sqlalchemy import text, update

from DIRAC.Core.Utilities.ReturnValues import S_OK
from DIRAC.DataManagementSystem.DB.FileCatalogDB import DB_URL_OPTION, FileCatalogDB
from DIRAC.DataManagementSystem.DB.FileCatalogSchema import schemaVersion
from DIRAC.Resources.Catalog.Utilities import iterDirectoryPages

URSULA = {"DN": "/CN=ursula", "username": "ursula", "group": "lhcb_user", "properties": ["NormalUser"], "VO": "lhcb"}
VICTOR = {"DN": "/CN=victor", "username": "victor", "group": "lhcb_user", "properties": ["NormalUser"], "VO": "lhcb"}
HOME = "/lhcb/user/u/ursula"


def info(size: int = 1) -> dict:
    return {"SE": "SE-A", "Size": size, "Checksum": "0000abcd", "PFN": ""}


def ok(result: dict) -> dict:
    assert result["OK"], result
    return result["Value"]


def counts(db: FileCatalogDB) -> dict:
    return ok(db.getCatalogCounters())


# ---------------------------------------------------------------- pages


def test_listing_pages_cover_the_directory_in_name_order(db):
    directory = f"{HOME}/big"
    names = [f"f{index:03d}" for index in range(23)] + ["B", "b", "x", "x "]
    ok(db.addFile({f"{directory}/{name}": info() for name in names}, URSULA))
    ok(db.createDirectory([f"{directory}/d{index}" for index in range(7)], URSULA))

    def page(path, verbose, marker, limit):
        return db.listDirectoryPage(path, URSULA, verbose, marker, limit)

    pages = [ok(result)["Successful"][directory] for result in iterDirectoryPages(page, directory, True, 5)]
    assert all(len(item["Files"]) + len(item["SubDirs"]) <= 5 for item in pages)
    assert pages[-1]["Next"] == "" and all(item["Next"] for item in pages[:-1])
    subDirs = [path for item in pages for path in item["SubDirs"]]
    files = [path for item in pages for path in item["Files"]]
    assert subDirs == [f"{directory}/d{index}" for index in range(7)]
    assert sorted(files) == sorted(f"{directory}/{name}" for name in names) and len(files) == len(set(files))
    assert all(entry["Replicas"] == {"SE-A": ""} for item in pages for entry in item["Files"].values())
    whole = ok(db.listDirectory(directory, URSULA))["Successful"][directory]
    assert sorted(whole["Files"]) == sorted(files) and sorted(whole["SubDirs"]) == subDirs


def test_listing_answer_is_bounded(db):
    ok(db.addFile({f"{HOME}/d/f{index}": info() for index in range(6)}, URSULA))
    db.maxListing = 6
    assert len(ok(db.listDirectory(f"{HOME}/d", URSULA))["Successful"][f"{HOME}/d"]["Files"]) == 6
    db.maxListing = 5
    failed = ok(db.listDirectory(f"{HOME}/d", URSULA))["Failed"]
    assert "more than 5 entries" in failed[f"{HOME}/d"] and "listDirectoryPage" in failed[f"{HOME}/d"]


@pytest.mark.parametrize(
    "arguments, reason",
    [
        (([f"{HOME}/a", f"{HOME}/b"], False, "", 10), "one directory"),
        ((HOME, False, "Zgarbage", 10), "marker"),
        ((HOME, False, 7, 10), "marker"),
        ((HOME, False, "", 0), "limit"),
        ((HOME, False, "", 10**6), "limit"),
        ((HOME, False, "", "10"), "limit"),
    ],
)
def test_bad_page_arguments_are_refused(db, arguments, reason):
    lfns, verbose, marker, limit = arguments
    result = db.listDirectoryPage(lfns, URSULA, verbose, marker, limit)
    assert not result["OK"] and reason in result["Message"]


def test_pages_check_permissions_every_time(db):
    ok(db.addFile({f"{HOME}/private/f{index}": info() for index in range(4)}, URSULA))
    first = ok(db.listDirectoryPage(f"{HOME}/private", URSULA, False, "", 2))["Successful"][f"{HOME}/private"]
    ok(db.changePathMode({f"{HOME}/private": 0o700}, URSULA))
    denied = ok(db.listDirectoryPage(f"{HOME}/private", VICTOR, False, first["Next"], 2))
    assert "Permission denied" in denied["Failed"][f"{HOME}/private"]


# ---------------------------------------------------------------- names


def test_names_are_case_and_space_sensitive(db):
    lfns = [f"{HOME}/n/B", f"{HOME}/n/b", f"{HOME}/n/x", f"{HOME}/n/x "]
    value = ok(db.addFile({lfn: info(size) for size, lfn in enumerate(lfns)}, URSULA))
    assert sorted(value["Successful"]) == sorted(lfns), value["Failed"]
    sizes = ok(db.getFileSize(lfns, URSULA))["Successful"]
    assert sizes == {lfn: size for size, lfn in enumerate(lfns)}


def test_longest_names_fit_the_indexes(db):
    directory = HOME + "/" + "é" * (760 - len(HOME) - 1)  # 2-byte characters; 760 characters in all
    lfn = f"{directory}/{'ü' * 255}"
    assert ok(db.addFile({lfn: info()}, URSULA))["Successful"] == {lfn: True}
    assert ok(db.exists(lfn, URSULA))["Successful"] == {lfn: True}


# ---------------------------------------------------------------- schema version


def test_schema_version_mismatch_is_a_clear_error(db, catalog_url):
    with db.engine.begin() as connection:
        connection.execute(update(schemaVersion).values(Version=99))
    other = FileCatalogDB(catalog_url)
    try:
        assert not other.isConnected()["OK"]
        assert "schema version 99" in other.connectionError and "needs version 1" in other.connectionError
        assert not other.addFile({f"{HOME}/x": info()}, URSULA)["OK"]
    finally:
        other.close()


def test_a_catalog_from_before_schema_versions_is_adopted(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    old = FileCatalogDB(url)
    ok(old.addFile({f"{HOME}/kept": info()}, URSULA))
    with old.engine.begin() as connection:  # the layout before schema versions: a plain GUID index
        connection.execute(text("DROP TABLE FC_SchemaVersion"))
        connection.execute(text("DROP INDEX ix_fc_directories_parent_path"))
        connection.execute(text("DROP INDEX ix_fc_files_guid"))
        connection.execute(text("CREATE INDEX ix_fc_files_guid ON FC_Files (GUID)"))
    old.close()
    reopened = FileCatalogDB(url)
    try:
        assert reopened.isConnected()["OK"], reopened.connectionError
        assert ok(reopened.exists(f"{HOME}/kept", URSULA))["Successful"] == {f"{HOME}/kept": True}
        with reopened.engine.connect() as connection:
            assert connection.execute(text("SELECT Version FROM FC_SchemaVersion")).scalar_one() == 1
            indexes = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars().all()
            guidUnique = connection.execute(text("SELECT \"unique\" FROM pragma_index_list('FC_Files')"
                                                 " WHERE name = 'ix_fc_files_guid'")).scalar_one()  # fmt: skip
        assert "ix_fc_directories_parent_path" in indexes and guidUnique == 1
    finally:
        reopened.close()


# ---------------------------------------------------------------- integrity and transactions


def test_integrity_error_after_retries_fails_each_lfn_and_writes_nothing(tmp_path):
    db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    with db.engine.begin() as connection:  # a constraint the catalog's own checks do not know about
        connection.execute(
            text(
                "CREATE TRIGGER poison BEFORE INSERT ON FC_Files WHEN NEW.FileName = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned name refused'); END"
            )
        )
    before = counts(db)
    value = ok(db.addFile({f"{HOME}/new/poison": info(), f"{HOME}/new/fine": info()}, URSULA))
    assert value["Successful"] == {}
    assert all(
        "refused by the database" in reason and "nothing was written" in reason for reason in value["Failed"].values()
    )
    assert sorted(value["Failed"]) == [f"{HOME}/new/fine", f"{HOME}/new/poison"]
    assert counts(db) == before  # not even the parent directories
    db.close()


def _writeAndHang(url: str, ready, lfns: dict) -> None:
    """Register ``lfns`` and stop inside the transaction, after the rows were sent, until killed."""
    catalog = FileCatalogDB(url)
    original = FileCatalogDB._fileIds

    def hang(conn, view, paths):
        result = original(conn, view, paths)
        ready.set()
        signal.pause()  # killed here, before the commit
        return result

    FileCatalogDB._fileIds = staticmethod(hang)
    catalog.addFile(lfns, URSULA)


def test_a_writer_killed_mid_transaction_leaves_nothing(db, catalog_url):
    lfns = {f"{HOME}/killed/sub/f{index}": info() for index in range(50)}
    before = counts(db)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    writer = context.Process(target=_writeAndHang, args=(catalog_url, ready, lfns))
    writer.start()
    try:
        assert ready.wait(timeout=60), "the writer never reached its transaction"
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=30)
    finally:
        if writer.is_alive():
            writer.kill()
            writer.join(timeout=10)
    assert counts(db) == before
    assert ok(db.addFile(lfns, URSULA))["Successful"] == dict.fromkeys(lfns, True)  # no lock left behind
    assert counts(db)["Files"] == before["Files"] + 50


# ---------------------------------------------------------------- where the URL comes from


def test_a_password_url_only_from_the_local_configuration(tmp_path, monkeypatch, mariadb_server):
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import cfgWithOption, gConfigurationData

    url = mariadb_server.newDatabase()
    monkeypatch.setenv("DIRACSYSCONFIG", str(tmp_path / "none.cfg"))
    gConfigurationData.reset()
    try:
        gConfigurationData.setCentralLoader(lambda _local: S_OK(cfgWithOption(DB_URL_OPTION, url)))
        central = FileCatalogDB()
        assert not central.isConnected()["OK"]
        assert "local dirac.cfg" in central.connectionError and url not in central.connectionError
        gConfigurationData.mergeLocal(cfgWithOption(DB_URL_OPTION, url))
        local = FileCatalogDB()
        assert local.isConnected()["OK"], local.connectionError
        local.close()
    finally:
        from DIRAC.ConfigurationSystem.Client.ConfigurationData import centralFileLoader

        gConfigurationData.setCentralLoader(centralFileLoader)
        gConfigurationData.reset()
        mariadb_server.dropDatabase(url)

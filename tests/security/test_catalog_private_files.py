"""The catalog's SQLite file and the gateway's audit file are their service's alone (0600).

Chosen behaviour: a file created by an older version with a looser mode is tightened to 0600
(with a warning); a link in its place, a file of another user, or a folder everybody may write
to is refused with the reason, and the service does not start.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.DataManagementSystem.Utilities.AuditLog import AuditLog

URSULA = {"DN": "/CN=ursula", "username": "ursula", "group": "lhcb_user", "properties": [], "VO": "lhcb"}


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def loose_umask():
    """The umask many servers run with: new files readable by everybody unless we say otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_new_catalog_database_is_private(tmp_path):
    folder = tmp_path / "work"
    database = folder / "fc.sqlite"
    catalog = FileCatalogDB(f"sqlite:///{database}")
    try:
        assert catalog.isConnected()["OK"], catalog.connectionError
        assert catalog.addFile({"/lhcb/user/u/ursula/f": {"SE": "A", "Size": 1, "Checksum": "1"}}, URSULA)["OK"]
        assert mode(folder) == 0o700
        for name in ("fc.sqlite", "fc.sqlite-wal", "fc.sqlite-shm"):
            assert mode(folder / name) == 0o600, name
    finally:
        catalog.close()


def test_existing_loose_catalog_database_is_tightened(tmp_path):
    database = tmp_path / "fc.sqlite"
    FileCatalogDB(f"sqlite:///{database}").close()
    for name in ("fc.sqlite", "fc.sqlite-wal", "fc.sqlite-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    catalog = FileCatalogDB(f"sqlite:///{database}")
    try:
        assert catalog.isConnected()["OK"], catalog.connectionError
        assert mode(database) == 0o600
    finally:
        catalog.close()


def test_catalog_database_in_a_folder_everybody_may_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # even sticky: SQLite opens -wal/-shm by name there
    catalog = FileCatalogDB(f"sqlite:///{shared / 'fc.sqlite'}")
    result = catalog.isConnected()
    assert not result["OK"] and f"folder {shared} is writable by everybody" in result["Message"]
    assert os.listdir(shared) == []


def test_catalog_database_name_holding_a_link_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere.sqlite"
    (tmp_path / "fc.sqlite").symlink_to(elsewhere)
    catalog = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
    result = catalog.isConnected()
    assert not result["OK"] and "is a symbolic link: refused" in result["Message"]
    assert not elsewhere.exists()


def test_audit_file_is_private_and_tightened(tmp_path):
    path = tmp_path / "audit" / "audit.jsonl"
    audit = AuditLog(str(path))
    assert audit.check()["OK"]
    audit.record([{"lfn": "/vo/f", "granted": True}])
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert json.loads(path.read_text())["lfn"] == "/vo/f"
    path.chmod(0o644)
    assert AuditLog(str(path)).check()["OK"]
    assert mode(path) == 0o600


def test_audit_file_in_an_open_folder_or_through_a_link_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = AuditLog(str(shared / "audit.jsonl")).check()
    assert not result["OK"] and "writable by everybody" in result["Message"]
    target = tmp_path / "target"
    (tmp_path / "audit.jsonl").symlink_to(target)
    result = AuditLog(str(tmp_path / "audit.jsonl")).check()
    assert not result["OK"] and "symbolic link" in result["Message"]
    assert not target.exists()

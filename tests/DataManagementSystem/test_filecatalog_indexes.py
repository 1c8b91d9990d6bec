"""Every query of the main catalog calls reaches its rows through an index, on each backend.

The statements a call really sends are recorded (SQLAlchemy's ``before_cursor_execute``) and
each read, update or delete is explained with its own parameters: no full table scan and no full
index scan may appear (SQLite: no ``SCAN`` step; MariaDB: no ``ALL`` or ``index`` access type;
PostgreSQL: no ``Seq Scan``, asked with ``enable_seqscan`` off, so that a sequential scan shows
only when no index can serve the query, whatever the planner thinks of a small table). So the
cost of a call does not grow with the number of files in the catalog.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.DataManagementSystem.DB.FileCatalogSchema import files

URSULA = {"DN": "/CN=ursula", "username": "ursula", "group": "lhcb_user", "properties": ["NormalUser"], "VO": "lhcb"}
HOME = "/lhcb/user/u/ursula"
BIG = f"{HOME}/big"


def info(size: int = 1) -> dict:
    return {"SE": "SE-A", "Size": size, "Checksum": "0000abcd", "PFN": ""}


@pytest.fixture
def filled(catalog_url):
    db = FileCatalogDB(catalog_url)
    assert db.isConnected()["OK"], db.connectionError
    assert not db.addFile({f"{BIG}/f{index:05d}": info(index) for index in range(3000)}, URSULA)["Value"]["Failed"]
    assert not db.createDirectory([f"{BIG}/sub{index:03d}" for index in range(200)], URSULA)["Value"]["Failed"]
    # elsewhere too, so that one directory's entries are a small part of each table (as in production)
    others = [f"{HOME}/other{group}/d{index}" for group in range(10) for index in range(300)]
    assert not db.createDirectory(others, URSULA)["Value"]["Failed"]
    assert not db.addFile({f"{HOME}/other0/d0/f{index}": info() for index in range(3000)}, URSULA)["Value"]["Failed"]
    analyze = "ANALYZE TABLE FC_Directories, FC_Files, FC_Replicas" if db.engine.dialect.name == "mysql" else "ANALYZE"
    with db.engine.begin() as connection:
        connection.exec_driver_sql(analyze)
    yield db
    db.close()


def recordStatements(db: FileCatalogDB, calls) -> list[tuple[str, object]]:
    """(statement, parameters) of every read, update and delete that ``calls()`` sends."""
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany):
        if not executemany and statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        calls()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def fullScans(db: FileCatalogDB, statement: str, parameters) -> list[str]:
    """The steps of the plan of ``statement`` that read a whole table or index."""
    backend = db.engine.dialect.name
    with db.engine.connect() as connection:
        cursor = connection.connection.cursor()
        try:
            if backend == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                steps = [row[3] for row in cursor.fetchall()]
                return [step for step in steps if step.startswith("SCAN ") and "CONSTANT ROW" not in step]
            if backend == "mysql":
                cursor.execute("EXPLAIN " + statement, parameters)
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                return [f"{row['table']}: {row['type']}" for row in rows if row["type"] in ("ALL", "index")]
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, parameters)
            steps = [row[0] for row in cursor.fetchall()]
            return [step for step in steps if "Seq Scan" in step]
        finally:
            cursor.close()
            connection.rollback()


def test_every_call_uses_an_index(filled):
    db = filled
    lfns = [f"{BIG}/f{index:05d}" for index in range(0, 3000, 300)]

    def calls():
        assert not db.addFile({f"{BIG}/new{index}": info() for index in range(5)}, URSULA)["Value"]["Failed"]
        assert not db.getReplicas(lfns, URSULA)["Value"]["Failed"]
        assert not db.getFileMetadata(lfns, URSULA)["Value"]["Failed"]
        assert all(db.hasAccess(lfns, "Write", URSULA)["Value"]["Successful"].values())
        assert not all(db.exists(lfns + [f"{BIG}/nothing/here"], URSULA)["Value"]["Successful"].values())
        first = db.listDirectoryPage(BIG, URSULA, True, "", 100)["Value"]["Successful"][BIG]
        db.listDirectoryPage(BIG, URSULA, True, first["Next"], 150)  # the end of the subdirectories, then files
        db.listDirectoryPage(BIG, URSULA, False, "Ff01000", 100)
        assert not db.addReplica({lfn: {"SE": "SE-B"} for lfn in lfns}, URSULA)["Value"]["Failed"]
        assert not db.removeReplica({lfn: "SE-B" for lfn in lfns}, URSULA)["Value"]["Failed"]
        assert not db.removeFile([f"{BIG}/new{index}" for index in range(5)], URSULA)["Value"]["Failed"]

    statements = recordStatements(db, calls)
    assert len(statements) > 20
    problems = {}
    for statement, parameters in statements:
        scans = fullScans(db, statement, parameters)
        if scans:
            problems[statement] = scans
    assert not problems, problems


def test_the_explain_check_sees_a_full_scan(filled):
    """The check itself: a query on a column without an index is reported."""
    db = filled

    def calls():
        with db.engine.connect() as connection:
            connection.execute(select(files.c.FileID).where(files.c.Checksum == "x")).all()

    [(statement, parameters)] = recordStatements(db, calls)
    assert fullScans(db, statement, parameters)

"""An SQLAlchemy engine set up for many concurrent writers, and a retrying transaction runner.

Why a module of its own: every catalog call is one transaction, and several
service processes (any number of FileCatalog copies behind one URL list) and
threads share one database. What each backend needs:

* SQLite (the default file): WAL journaling (readers never block the writer), a
  busy timeout, and write transactions that take the write lock up front
  (``BEGIN IMMEDIATE``) so that two writers never deadlock on a lock upgrade.
* MariaDB/MySQL (``mysql+pymysql://``) and PostgreSQL (``postgresql+psycopg://``):
  a connection pool checked before use (a restarted server or a dropped idle
  connection is replaced), utf8mb4 on MariaDB, and the isolation level chosen
  per call (``runTransaction``):

  - read calls run in ``REPEATABLE READ``: one snapshot for the whole call, so a
    bulk look-up or a listing page never mixes rows from before and after a
    concurrent write;
  - write calls run in ``READ COMMITTED``: every statement sees what other
    writers committed, and correctness rests on the unique keys and foreign keys
    (a second entry for one name, a file in a directory being removed) rather
    than on snapshots; InnoDB then takes no gap locks, so concurrent inserts into
    one directory do not deadlock.

A transaction either commits whole or not at all: a service killed mid-call
leaves nothing half written (the server rolls back the dead connection's
transaction; SQLite's journal does the same for a dead process).

What still fails with "database is locked", a deadlock, a serialization
failure, or a unique-key race between two writers is retried a bounded number
of times: a transaction function must therefore only read and write through
the connection it is given, so that re-running it is safe.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from DIRAC.FrameworkSystem.Client.Logger import gLogger

T = TypeVar("T")

#: How long one SQLite statement waits for a lock before failing, in seconds.
SQLITE_BUSY_TIMEOUT = 30.0
#: How many times a transaction is attempted when it hits a lock or a unique-key race.
MAX_ATTEMPTS = 8

_WRITE_OPTION = "dirac_write_transaction"
_RETRYABLE_WORDS = ("database is locked", "database is busy", "deadlock", "lock wait timeout", "could not serialize")

log = gLogger.getSubLogger("SQLAlchemyEngine")


def isSQLite(url: str) -> bool:
    """True when ``url`` names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


#: Isolation level of the read calls and of the write calls on the server databases.
READ_ISOLATION = "REPEATABLE READ"
WRITE_ISOLATION = "READ COMMITTED"
#: Connections each service process keeps open to a server database (and extra ones under load).
POOL_SIZE = 8
POOL_OVERFLOW = 16
#: Seconds after which a pooled connection is replaced (below MariaDB's default wait_timeout of 8 h).
POOL_RECYCLE = 3600


def makeEngine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, a busy timeout and explicit BEGIN control."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "mysql" and "charset" not in parsed.query:
            kwargs["connect_args"] = {"charset": "utf8mb4"}
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_recycle=POOL_RECYCLE,
            isolation_level=WRITE_ISOLATION,
            **kwargs,
        )
    database = parsed.database
    inMemory = not database or database == ":memory:"
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}}
    if inMemory:
        kwargs["poolclass"] = StaticPool
    else:
        # One connection per thread at most; the file is shared with other processes.
        kwargs["pool_size"] = 8
        kwargs["max_overflow"] = 8
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _onConnect(dbapiConnection, _record):  # noqa: ANN001 - DB-API objects
        # Let SQLAlchemy's "begin" event below decide how each transaction starts.
        dbapiConnection.isolation_level = None
        cursor = dbapiConnection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not inMemory:
                _retrying(lambda: cursor.execute("PRAGMA journal_mode = WAL"))
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _onBegin(connection: Connection):
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _isRetryable(exc: DBAPIError) -> bool:
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return any(word in text for word in _RETRYABLE_WORDS)


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.02 * (2**attempt)) * (0.5 + random.random()))


def _retrying(func: Callable[[], T]) -> T:
    """Run ``func`` again (bounded) while SQLite reports a busy database."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError, raised by the DB-API below SQLAlchemy
            if "locked" not in str(exc).lower() or attempt == MAX_ATTEMPTS - 1:
                raise
            _backoff(attempt)
    raise RuntimeError("unreachable")


def runTransaction(engine: Engine, func: Callable[[Connection], T], *, write: bool) -> T:
    """Run ``func(connection)`` in one transaction, committed when it returns, rolled back when it raises.

    Write transactions take the write lock at their start on SQLite and run in
    ``WRITE_ISOLATION`` on server databases; reads run in ``READ_ISOLATION`` (see
    the module documentation). Lock contention, deadlocks, serialization failures
    and unique-key races (two writers creating the same directory) are retried up
    to ``MAX_ATTEMPTS`` times; any other error propagates, the last
    ``IntegrityError`` included.
    """
    options: dict[str, Any] = {_WRITE_OPTION: write}
    if engine.dialect.name != "sqlite":
        options["isolation_level"] = WRITE_ISOLATION if write else READ_ISOLATION
    for attempt in range(MAX_ATTEMPTS):
        try:
            with engine.connect() as connection:
                connection.execution_options(**options)
                with connection.begin():
                    return func(connection)
        except IntegrityError:
            if not write or attempt == MAX_ATTEMPTS - 1:
                raise
            log.verbose("Unique-key race, retrying the transaction", f"attempt {attempt + 1}")
        except OperationalError as exc:
            if not _isRetryable(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            log.verbose("Database busy, retrying the transaction", f"attempt {attempt + 1}")
        _backoff(attempt)
    raise RuntimeError("unreachable")

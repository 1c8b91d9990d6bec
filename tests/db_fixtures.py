"""Real MariaDB and PostgreSQL servers for the catalog tests and benchmarks (a pytest plugin).

Each server runs from Debian's binaries (``mariadb-server``, ``postgresql``) in its own data
folder, on 127.0.0.1 and a free port, with a password user ``dirac``; it is started once per
test session and stopped by its PID at the end. Tests get one fresh database per test.

* ``MariaDBServer.start(folder)`` / ``PostgreSQLServer.start(folder)``: a running server;
  ``newDatabase()`` gives the SQLAlchemy URL of a fresh, empty database, ``dropDatabase(url)``
  removes it, ``stop()`` ends the server by its PID.
* ``missingReason(backend)``: why a backend cannot run here ('' when it can).
* Fixtures: ``mariadb_server``, ``postgresql_server`` (session) and ``catalog_url``, the URL of a
  fresh catalog database, parametrized over ``sqlite``, ``mariadb`` and ``postgresql`` (and
  ``catalog_url_module``, the same per test module); a server whose binaries are absent is
  skipped with the reason. ``db``: a connected ``FileCatalogDB`` on ``catalog_url``.

As root (CI), ``mariadbd`` runs with ``--user=root`` and PostgreSQL, which refuses root, as
the ``postgres`` system user, with a data folder it owns (the folders above it get ``o+x``
so that this user may reach it). The servers trade durability for speed (no fsync): test
data only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from DIRAC.Core.Utilities.Subprocesses import LOOPBACK, freePort

BACKENDS = ("sqlite", "mariadb", "postgresql")
USER = "dirac"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def _isRoot() -> bool:
    return os.geteuid() == 0


def mariadbBinaries() -> tuple[str, str] | None:
    """(install-db, server) binaries of MariaDB, None when absent."""
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    server = shutil.which("mariadbd", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    return (install, server) if install and server else None


def postgresqlBinaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``postgres``."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]), reverse=True)
    for folder in candidates:
        if os.access(f"{folder}/initdb", os.X_OK) and os.access(f"{folder}/postgres", os.X_OK):
            return Path(folder)
    return None


def missingReason(backend: str) -> str:
    """Why ``backend`` cannot run here: '' when it can."""
    if backend == "mariadb":
        if mariadbBinaries() is None:
            return "MariaDB server binaries not found (apt-get install mariadb-server)"
        try:
            import pymysql  # noqa: F401
        except ImportError:
            return "PyMySQL is not installed (pip install DIRAC-S3[mysql])"
    if backend == "postgresql":
        if postgresqlBinaries() is None:
            return "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        if _isRoot():
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' system user to run PostgreSQL"
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "psycopg is not installed (pip install DIRAC-S3[postgresql])"
    return ""


def _waitUntil(ready, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if ready():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    _stop(process, None)
    raise RuntimeError(f"{what} did not start (exit code {process.poll()}); log tail:\n{tail}")


def _stop(process: subprocess.Popen, signal: int | None) -> None:
    """Stop ``process`` by its PID: ``signal`` (SIGTERM when None), a bounded wait, then SIGKILL."""
    if process.poll() is not None:
        return
    if signal is None:
        process.terminate()
    else:
        process.send_signal(signal)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


class DatabaseServer:
    """A running server: ``url(database)``, ``newDatabase()``, ``dropDatabase(url)``, ``stop()``."""

    backend = ""
    driver = ""
    #: what ``CREATE DATABASE name`` and ``DROP DATABASE IF EXISTS name`` need after the name here
    createOptions = ""
    dropOptions = ""

    def __init__(self, folder: Path, port: int, password: str, process: subprocess.Popen, log: Path) -> None:
        self.folder = folder
        self.port = port
        self.password = password
        self.process = process
        self.log = log

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` for the ``dirac`` user."""
        return f"{self.driver}://{USER}:{self.password}@{LOOPBACK}:{self.port}/{database}"

    def newDatabase(self) -> str:
        """The URL of a fresh empty database."""
        name = f"fc_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}{self.createOptions}")
        return self.url(name)

    def dropDatabase(self, url: str) -> None:
        """Remove the database of ``url`` (made by ``newDatabase``)."""
        name = url.rsplit("/", 1)[1]
        self.admin(f"DROP DATABASE IF EXISTS {name}{self.dropOptions}")

    def admin(self, statement: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class MariaDBServer(DatabaseServer):
    """``mariadbd`` in ``folder/data``; root reaches it through the socket, ``dirac`` by TCP with a password."""

    backend = "mariadb"
    driver = "mysql+pymysql"

    @classmethod
    def start(cls, folder: Path, bufferPool: str = "128M") -> MariaDBServer:
        install, server = mariadbBinaries()
        data = folder / "data"
        data.mkdir(parents=True)
        log = folder / "mariadb.log"
        asRoot = ["--user=root"] if _isRoot() else []
        with open(log, "ab") as handle:
            subprocess.run(
                [install, "--no-defaults", *asRoot, f"--datadir={data}", "--auth-root-authentication-method=normal",
                 "--skip-test-db"],
                stdout=handle, stderr=subprocess.STDOUT, check=True, timeout=120,
            )  # fmt: skip
        port = freePort()
        socket = folder / "mariadb.sock"
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                [server, "--no-defaults", *asRoot, f"--datadir={data}", f"--socket={socket}", f"--port={port}",
                 f"--bind-address={LOOPBACK}", f"--pid-file={folder / 'mariadb.pid'}", "--skip-name-resolve",
                 "--skip-log-bin", f"--innodb-buffer-pool-size={bufferPool}", "--innodb-flush-log-at-trx-commit=0",
                 "--innodb-doublewrite=0", "--max-connections=500", f"--log-error={log}"],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        password = secrets.token_hex(12)
        instance = cls(folder, port, password, process, log)
        instance.socket = socket
        _waitUntil(instance._answers, process, log, "mariadbd")
        instance.admin(f"CREATE USER '{USER}'@'{LOOPBACK}' IDENTIFIED BY '{password}'")
        instance.admin(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{LOOPBACK}'")
        return instance

    def _connectRoot(self):
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket), user="root", password="", autocommit=True)

    def _answers(self) -> bool:
        import pymysql

        try:
            self._connectRoot().close()
            return True
        except pymysql.err.OperationalError:
            return False

    def admin(self, statement: str) -> None:
        connection = self._connectRoot()
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def stop(self) -> None:
        _stop(self.process, None)  # SIGTERM: a normal shutdown


class PostgreSQLServer(DatabaseServer):
    """``postgres`` in ``folder/data`` (owned by the ``postgres`` user when run as root)."""

    backend = "postgresql"
    driver = "postgresql+psycopg"
    createOptions = f" OWNER {USER}"
    dropOptions = " WITH (FORCE)"  # even while a client is still connected

    @classmethod
    def start(cls, folder: Path, sharedBuffers: str = "128MB") -> PostgreSQLServer:
        binaries = postgresqlBinaries()
        data = folder / "data"
        log = folder / "postgresql.log"
        password = secrets.token_hex(12)
        passwordFile = folder / "password"
        folder.mkdir(parents=True, exist_ok=True)
        passwordFile.write_text(password + "\n")
        runAs: dict = {}
        if _isRoot():
            runAs = {"user": "postgres", "group": "postgres", "extra_groups": []}
            _letPostgresReach(folder)
            os.chmod(passwordFile, 0o644)
            data.mkdir()
            shutil.chown(data, "postgres", "postgres")
        with open(log, "ab") as handle:
            subprocess.run(
                [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={passwordFile}",
                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                stdout=handle, stderr=subprocess.STDOUT, check=True, timeout=120, **runAs,
            )  # fmt: skip
        passwordFile.unlink()
        port = freePort()
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                 "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", f"shared_buffers={sharedBuffers}", "-c", "max_connections=300"],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **runAs,
            )  # fmt: skip
        instance = cls(folder, port, password, process, log)
        _waitUntil(instance._answers, process, log, "postgres")
        instance.admin(f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{password}'")
        return instance

    def _connect(self):
        import psycopg

        return psycopg.connect(
            host=LOOPBACK, port=self.port, user="postgres", password=self.password, dbname="postgres", autocommit=True
        )

    def _answers(self) -> bool:
        import psycopg

        try:
            self._connect().close()
            return True
        except psycopg.OperationalError:
            return False

    def admin(self, statement: str) -> None:
        connection = self._connect()
        try:
            connection.execute(statement)
        finally:
            connection.close()

    def stop(self) -> None:
        import signal

        _stop(self.process, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for clients)


def _letPostgresReach(folder: Path) -> None:
    """``o+x`` on ``folder`` and the folders above it that lack it, so the postgres user reaches its data."""
    for path in [folder, *folder.parents]:
        mode = path.stat().st_mode
        if not mode & 0o001:
            os.chmod(path, mode | 0o001)


SERVERS = {"mariadb": MariaDBServer, "postgresql": PostgreSQLServer}


def startServer(backend: str, folder: Path, **options: str) -> DatabaseServer:
    """Start the server of ``backend`` ('mariadb' or 'postgresql') in ``folder``."""
    return SERVERS[backend].start(folder, **options)


def _sessionServer(backend: str, tmp_path_factory):
    reason = missingReason(backend)
    if reason:
        pytest.skip(reason)
    server = startServer(backend, tmp_path_factory.mktemp(backend))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory):
    """A MariaDB server for the whole session (skipped when its binaries or driver are absent)."""
    yield from _sessionServer("mariadb", tmp_path_factory)


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory):
    """A PostgreSQL server for the whole session (skipped when its binaries or driver are absent)."""
    yield from _sessionServer("postgresql", tmp_path_factory)


@contextlib.contextmanager
def freshDatabase(request, backend: str, folder: Path) -> Iterator[str]:
    """The URL of a fresh catalog database on ``backend`` (an SQLite file in ``folder``), removed after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'fc.sqlite'}"
        return
    server = request.getfixturevalue(f"{backend}_server")
    url = server.newDatabase()
    try:
        yield url
    finally:
        server.dropDatabase(url)


def emptyCatalog(url: str) -> None:
    """Remove every catalog row at ``url`` (its tables stay; the next FileCatalogDB adds the root again)."""
    from sqlalchemy import create_engine, insert, inspect
    from sqlalchemy.pool import NullPool

    from DIRAC.DataManagementSystem.DB.FileCatalogSchema import SCHEMA_VERSION, metadata, schemaVersion

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            present = set(inspect(connection).get_table_names())
            tables = [table for table in reversed(metadata.sorted_tables) if table.name in present]
            if engine.dialect.name == "postgresql" and tables:
                connection.exec_driver_sql("TRUNCATE " + ", ".join(f'"{table.name}"' for table in tables))
            else:
                connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")  # a directory tree deleted in any order
                for table in tables:
                    connection.execute(table.delete())
            if schemaVersion.name in present:
                connection.execute(insert(schemaVersion).values(ID=1, Version=SCHEMA_VERSION))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def catalog_url(request, tmp_path):
    """SQLAlchemy URL of an empty catalog database on each backend in turn.

    On MariaDB and PostgreSQL one database per session serves every test and is emptied after
    each (creating a database and its tables costs about a second; emptying a few milliseconds).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fc.sqlite'}"
        return
    url = request.getfixturevalue(f"{request.param}_catalog")
    try:
        yield url
    finally:
        emptyCatalog(url)


@pytest.fixture
def db(catalog_url):
    """A connected ``FileCatalogDB`` on ``catalog_url`` (each backend in turn), closed after the test."""
    from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

    catalog = FileCatalogDB(catalog_url)
    assert catalog.isConnected()["OK"], catalog.connectionError
    yield catalog
    catalog.close()


def _sessionCatalog(server: DatabaseServer) -> Iterator[str]:
    url = server.newDatabase()
    try:
        yield url
    finally:
        server.dropDatabase(url)


@pytest.fixture(scope="session")
def mariadb_catalog(mariadb_server):
    """The session's catalog database on MariaDB (``catalog_url`` empties it after each test)."""
    yield from _sessionCatalog(mariadb_server)


@pytest.fixture(scope="session")
def postgresql_catalog(postgresql_server):
    """The session's catalog database on PostgreSQL (``catalog_url`` empties it after each test)."""
    yield from _sessionCatalog(postgresql_server)


@pytest.fixture(scope="module", params=BACKENDS)
def catalog_url_module(request, tmp_path_factory):
    """The same, shared by the tests of a module (for services started once per module)."""
    with freshDatabase(request, request.param, tmp_path_factory.mktemp("catalog-db")) as url:
        yield url

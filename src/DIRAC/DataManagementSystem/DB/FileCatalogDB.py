"""FileCatalogDB: DIRAC's replica and metadata catalog over SQLAlchemy, with POSIX permissions.

Every method takes the caller's credentials dict (``DN``, ``username``,
``group``, ``properties``, optionally ``VO``) and a bulk argument (one LFN,
a list, or a dict ``{lfn: value}``) and returns
``S_OK({'Successful': {lfn: ...}, 'Failed': {lfn: reason}})``; an LFN that is
malformed or refused lands in ``Failed`` and nothing is written for it.

Each call is one transaction, and a bulk call costs a few set-based queries
whatever the number of LFNs (see ``FileCatalogView``). Who may do what is
decided by ``FileCatalogPolicy``; see ``docs/FileCatalogPolicy.rst``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, inspect, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.PrivateFile import securePrivateFile
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.DB import FileCatalogInput as fcInput
from DIRAC.DataManagementSystem.DB import FileCatalogPolicy as policy
from DIRAC.DataManagementSystem.DB.FileCatalogSchema import (
    MAX_DIR_PATH,
    SCHEMA_VERSION,
    directories,
    files,
    metadata,
    replicas,
    schemaVersion,
)
from DIRAC.DataManagementSystem.DB.FileCatalogView import CatalogView, chunks, joinPath, parentOf
from DIRAC.DataManagementSystem.DB.SQLAlchemyEngine import isSQLite, makeEngine, runTransaction
from DIRAC.FrameworkSystem.Client.Logger import gLogger

DB_URL_OPTION = "/Systems/DataManagement/Databases/FileCatalogDB/URL"
DB_FILE_NAME = "FileCatalogDB.sqlite"
FILE_STATUS = "AprioriGood"
REPLICA_STATUS = "AprioriGood"
#: Entries per listDirectoryPage page by default and at most; entries per directory in one listDirectory.
LIST_PAGE = 1000
MAX_LIST_PAGE = 10_000
MAX_LISTING = 20_000
#: Attempts at creating or checking the schema when the catalog starts.
SCHEMA_ATTEMPTS = 10

NO_SUCH = policy.NO_SUCH
PERMISSION_DENIED = policy.PERMISSION_DENIED

log = gLogger.getSubLogger("FileCatalogDB")


def getWorkDirectory() -> str:
    """The instance's work folder: ``<InstancePath>/work`` (``/LocalSite/InstancePath``), else ``$DIRAC/work``."""
    instance = gConfig.getValue("/LocalSite/InstancePath", "") or os.environ.get("DIRAC", "") or os.getcwd()
    return os.path.join(instance, "work")


def getDefaultURL() -> str:
    """The catalog's SQLAlchemy URL: the configured one, else an SQLite file in the work folder.

    A URL carrying a password must come from the host's local configuration
    (``dirac.cfg``), never from the central one, which every client can read:
    such a URL is refused (``checkURLSource``) and the catalog does not connect.
    """
    url = gConfig.getValue(DB_URL_OPTION, "")
    if url:
        return url
    return f"sqlite:///{os.path.join(getWorkDirectory(), DB_FILE_NAME)}"


def checkURLSource(url: str) -> dict:
    """S_ERROR when ``url`` holds a password that the local configuration did not set."""
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    try:
        password = make_url(url).password
    except (ValueError, TypeError) as exc:
        return S_ERROR(DErrno.ECONF, f"{DB_URL_OPTION} is not a database URL: {exc}")
    if not password:
        return S_OK()
    gConfigurationData.ensureLoaded()
    if gConfigurationData.localCFG.getOption(DB_URL_OPTION, "") == url:
        return S_OK()
    return S_ERROR(
        DErrno.ECONF,
        f"{DB_URL_OPTION} carries a password but is not set in this host's local dirac.cfg (the central "
        "configuration is readable by every client): refused, set it in the local configuration only",
    )


class SchemaVersionError(ValueError):
    """The database holds a catalog of another schema version than this code."""


class SchemaInProgress(RuntimeError):
    """The version table exists but has no row yet: another instance is creating the schema."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _fileMetadata(row: Any) -> dict:
    return {
        "Size": row.Size,
        "Checksum": row.Checksum,
        "ChecksumType": row.ChecksumType,
        "GUID": row.GUID,
        "Owner": row.Owner,
        "OwnerGroup": row.OwnerGroup,
        "Mode": row.Mode,
        "CreationDate": row.CreationDate,
        "ModificationDate": row.ModificationDate,
        "Status": row.Status,
        "FileID": row.FileID,
        "Type": "File",
    }


def _dirMetadata(row: Any) -> dict:
    return {
        "DirID": row.DirID,
        "Owner": row.Owner,
        "OwnerGroup": row.OwnerGroup,
        "Mode": row.Mode,
        "CreationDate": row.CreationDate,
        "ModificationDate": row.ModificationDate,
        "Type": "Directory",
    }


def _constraintText(exc: IntegrityError) -> str:
    """The database's one-line reason for an integrity error (no SQL, no parameters)."""
    text = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
    return text[:200]


def _bulkCall(check: fcInput.ValueCheck | None = None, write: bool = False):
    """Decorate ``method(self, conn, ident, items, *args) -> (successful, failed)`` into a public bulk method.

    The wrapper validates the LFN argument, runs the body in one transaction
    and maps results back to the caller's keys; database errors become S_ERROR.
    """

    def decorator(body: Callable) -> Callable:
        @functools.wraps(body)
        def wrapper(self: FileCatalogDB, lfns: Any, credDict: dict | None = None, *args: Any, **kwargs: Any) -> dict:
            if not self._connected:
                return S_ERROR(DErrno.EIO, f"FileCatalogDB is not connected: {self.connectionError}")
            prepared = fcInput.prepareLFNs(lfns, check)
            if not prepared["OK"]:
                return prepared
            items, keyMap, preFailed = prepared["Value"]
            if self.maxLFNsPerCall and len(items) + len(preFailed) > self.maxLFNsPerCall:
                return S_ERROR(
                    DErrno.EINVAL,
                    f"{body.__name__.lstrip('_')}: {len(items) + len(preFailed)} LFNs in one call, at most "
                    f"{self.maxLFNsPerCall}: split the call (FileCatalogClient does)",
                )
            if not items:
                return S_OK(fcInput.expandResult({}, {}, keyMap, preFailed))
            ident = self.identity(credDict)
            try:
                successful, failed = runTransaction(
                    self.engine, lambda conn: body(self, conn, ident, items, *args, **kwargs), write=write
                )
            except IntegrityError as exc:
                # Still refused after the retries: a duplicate that another writer keeps creating, or a
                # constraint the checks above do not cover. The transaction was rolled back: nothing written.
                reason = f"refused by the database ({_constraintText(exc)}); nothing was written, try again"
                log.warn(f"{body.__name__}: integrity error after retries", reason)
                return S_OK(fcInput.expandResult({}, dict.fromkeys(items, reason), keyMap, preFailed))
            except SQLAlchemyError as exc:
                log.error(f"{body.__name__} failed in the database", repr(exc))
                return S_ERROR(DErrno.EIO, f"FileCatalogDB.{body.__name__}: database error: {exc.__class__.__name__}")
            return S_OK(fcInput.expandResult(successful, failed, keyMap, preFailed))

        return wrapper

    return decorator


class FileCatalogDB:
    """The catalog database; one object per process is enough (thread safe through its engine).

    ``maxListing``: most entries of one directory in a ``listDirectory`` answer;
    ``maxLFNsPerCall``: most LFNs in one bulk call (None: no limit; the service sets one
    so that its memory per call stays bounded, and our client sends smaller chunks).
    """

    maxListing = MAX_LISTING
    maxLFNsPerCall: int | None = None

    def __init__(
        self,
        url: str | None = None,
        *,
        defaultDirMode: int = policy.DEFAULT_DIR_MODE,
        defaultFileMode: int = policy.DEFAULT_FILE_MODE,
        voResolver: Callable[[str], str | None] | None = None,
        groupsResolver: Callable[[str], Iterable[str] | None] | None = None,
    ):
        """Open (and create when needed) the catalog at ``url`` (default: ``getDefaultURL()``, whose
        password, if any, must come from the local configuration: see ``checkURLSource``).

        ``voResolver(group)`` gives the VO of a DIRAC group and ``groupsResolver(user)``
        the groups of a user (the service wires the Registry helpers); without them
        the VO comes from the credentials' ``VO`` key and a user belongs to the
        current group only. A failure to connect is kept in ``connectionError``
        and every method then returns S_ERROR.
        """
        self.url = url or getDefaultURL()
        self.defaultDirMode = defaultDirMode
        self.defaultFileMode = defaultFileMode
        self.voResolver = voResolver
        self.groupsResolver = groupsResolver
        self._connected = False
        self.connectionError = ""
        self.engine = None
        if url is None:
            allowed = checkURLSource(self.url)
            if not allowed["OK"]:
                self.connectionError = allowed["Message"]
                log.error("Cannot open the file catalog database", self.connectionError)
                return
        try:
            self._connect()
            self._connected = True
        except SchemaVersionError as exc:
            self.connectionError = str(exc)
            log.error("Cannot use the file catalog database", self.connectionError)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            self.connectionError = f"{exc.__class__.__name__}: {exc}"
            log.error("Cannot open the file catalog database", self.connectionError)

    def _connect(self) -> None:
        if isSQLite(self.url):
            database = make_url(self.url).database
            if database and database != ":memory:":
                # The catalog file (and SQLite's -wal / -shm beside it) is the service's alone: 0600.
                for name in (database, f"{database}-wal", f"{database}-shm"):
                    if name == database or os.path.lexists(name):
                        secured = securePrivateFile(name, "FileCatalogDB")
                        if not secured["OK"]:
                            raise ValueError(secured["Message"])
        self.engine = makeEngine(self.url)
        # Two services starting on one empty database race to create the tables: the loser's DDL
        # fails (MariaDB commits DDL at once) and its next attempt finds them.
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                runTransaction(self.engine, self._createSchema, write=True)
                return
            except (OperationalError, ProgrammingError, IntegrityError, SchemaInProgress) as exc:
                if attempt == SCHEMA_ATTEMPTS - 1:
                    if isinstance(exc, SchemaInProgress):
                        raise SchemaVersionError(f"{schemaVersion.name} is empty: {exc}, or was interrupted") from exc
                    raise
                time.sleep(0.2 * (attempt + 1))

    @staticmethod
    def _createSchema(conn: Connection) -> None:
        """Create the tables on an empty database; check the schema version of an existing one.

        A database with catalog tables but no version table was made before versions existed,
        with this same layout (version 1) but for indexes: its missing indexes are added (the
        GUID's made unique) and its version written.
        """
        tables = set(inspect(conn).get_table_names())
        if schemaVersion.name in tables:
            found = conn.execute(select(schemaVersion.c.Version)).scalars().all()
            if not found:
                raise SchemaInProgress("another catalog instance is creating the schema")
            if found != [SCHEMA_VERSION]:
                raise SchemaVersionError(
                    f"the catalog database has schema version {found[0]} and this "
                    f"code needs version {SCHEMA_VERSION}: use the matching release, or migrate the "
                    "database (README: 'The catalog database in production') before starting the catalog"
                )
        else:
            metadata.create_all(conn, tables=[directories, files, replicas], checkfirst=True)
            schemaVersion.create(conn, checkfirst=True)  # last: once it has its row, the schema is whole
            FileCatalogDB._ensureIndexes(conn)
            conn.execute(insert(schemaVersion).values(ID=1, Version=SCHEMA_VERSION))
        if conn.execute(select(directories.c.DirID).where(directories.c.Path == "/")).first() is None:
            now = _now()
            conn.execute(
                insert(directories).values(
                    Path="/",
                    ParentID=None,
                    Owner=policy.ROOT_OWNER,
                    OwnerGroup=policy.ROOT_GROUP,
                    Mode=policy.SYSTEM_DIR_MODE,
                    CreationDate=now,
                    ModificationDate=now,
                )
            )

    @staticmethod
    def _ensureIndexes(conn: Connection) -> None:
        """Create the schema's indexes that are missing; one an older release made non-unique (the GUID's)
        is made unique (this fails, and the catalog does not start, while two files share a GUID)."""
        inspector = inspect(conn)
        for table in metadata.sorted_tables:
            present = {item["name"]: item for item in inspector.get_indexes(table.name)}
            for index in table.indexes:
                found = present.get(index.name)
                if found is not None and bool(found.get("unique")) != bool(index.unique):
                    log.warn("Recreating an index of an older catalog", f"{index.name} (unique={index.unique})")
                    index.drop(conn)
                    found = None
                if found is None:
                    index.create(conn)

    def isConnected(self) -> dict:
        """S_OK when the database is open, S_ERROR with the reason otherwise."""
        return S_OK() if self._connected else S_ERROR(DErrno.EIO, self.connectionError)

    def close(self) -> None:
        """Release the database connections."""
        if self.engine is not None:
            self.engine.dispose()

    def identity(self, credDict: dict | None) -> policy.Identity:
        """The caller's identity as the policy sees it."""
        return policy.Identity.fromCredentials(credDict, self.voResolver, self.groupsResolver)

    # ------------------------------------------------------------------ decisions

    @staticmethod
    def _allows(test: Callable[..., bool], ident: policy.Identity, row: Any) -> bool:
        return test(ident, row.Owner, row.OwnerGroup, row.Mode)

    @staticmethod
    def _allowedPaths(check: Callable[[str], str | None], items: Iterable[str], failed: dict) -> list[str]:
        """The paths ``check`` allows; the refusal reason in ``failed`` for the others."""
        allowed = []
        for path in items:
            reason = check(path)
            if reason:
                failed[path] = reason
            else:
                allowed.append(path)
        return allowed

    def _readable(
        self, ident: policy.Identity, view: CatalogView, items: Iterable[str], failed: dict, wantFile: bool
    ) -> list[str]:
        """The readable files (``wantFile``) or directories among ``items``; a failure entry for the others."""
        found = []
        for path in self._allowedPaths(policy.PathAccess(ident, view).read, items, failed):
            if path in (view.files if wantFile else view.dirs):
                found.append(path)
            elif wantFile:
                failed[path] = f"Is a directory: {path}" if path in view.dirs else f"{NO_SUCH}: {path}"
            else:
                failed[path] = f"Not a directory: {path}" if path in view.files else f"{NO_SUCH}: {path}"
        return found

    # ------------------------------------------------------------------ writing helpers

    def _createDirectories(self, conn: Connection, view: CatalogView, ident: policy.Identity, paths: set[str]) -> None:
        """Insert the directories at ``paths`` (ancestors first) and add them to ``view``."""
        now = _now()
        byDepth: dict[int, list[str]] = {}
        for path in paths:
            byDepth.setdefault(path.count("/"), []).append(path)
        for depth in sorted(byDepth):
            rows = []
            for path in byDepth[depth]:
                owner, group, mode = policy.newDirectoryOwnership(ident, path, self.defaultDirMode)
                rows.append(
                    {
                        "Path": path,
                        "ParentID": view.dirs[parentOf(path)].DirID,
                        "Owner": owner or policy.ROOT_OWNER,
                        "OwnerGroup": group or policy.ROOT_GROUP,
                        "Mode": mode,
                        "CreationDate": now,
                        "ModificationDate": now,
                    }
                )
            conn.execute(insert(directories), rows)
            view.loadDirectories(byDepth[depth])

    @staticmethod
    def _fileIds(conn: Connection, view: CatalogView, paths: Iterable[str]) -> dict[str, int]:
        """{path: FileID} for files just inserted."""
        pairs = {(view.dirs[parentOf(path)].DirID, path.rpartition("/")[2]): path for path in paths}
        result: dict[str, int] = {}
        for chunk in chunks(pairs):
            query = select(files.c.FileID, files.c.DirID, files.c.FileName).where(
                files.c.DirID.in_({dirId for dirId, _ in chunk}), files.c.FileName.in_({name for _, name in chunk})
            )
            for row in conn.execute(query):
                path = pairs.get((row.DirID, row.FileName))
                if path is not None:
                    result[path] = row.FileID
        return result

    @staticmethod
    def _replicaSEs(conn: Connection, fileIds: Iterable[int], status: str | None = None) -> dict[int, dict[str, str]]:
        """{FileID: {SE: PFN}} for the given files; only the replicas in ``status`` when it is given."""
        result: dict[int, dict[str, str]] = {}
        for chunk in chunks(fileIds):
            query = select(replicas.c.FileID, replicas.c.SE, replicas.c.PFN).where(replicas.c.FileID.in_(chunk))
            if status is not None:
                query = query.where(replicas.c.Status == status)
            for row in conn.execute(query):
                result.setdefault(row.FileID, {})[row.SE] = row.PFN
        return result

    @staticmethod
    def _guidConflicts(conn: Connection, newFiles: dict[str, dict]) -> dict[str, str]:
        """{path: reason} for new files whose GUID another file holds, in the catalog or in this request.

        A GUID names one file (DIRAC looks files up by it); the schema's unique index backs this up.
        """
        byGuid: dict[str, list[str]] = {}
        for path, info in newFiles.items():
            byGuid.setdefault(info["GUID"], []).append(path)
        taken: set[str] = set()
        for chunk in chunks(byGuid):
            taken.update(conn.execute(select(files.c.GUID).where(files.c.GUID.in_(chunk))).scalars())
        conflicts: dict[str, str] = {}
        for guid, paths in byGuid.items():
            if guid in taken:
                conflicts.update(dict.fromkeys(paths, f"GUID {guid} is already registered for another file"))
            elif len(paths) > 1:
                conflicts.update(dict.fromkeys(paths, f"GUID {guid} is given to {len(paths)} LFNs of this request"))
        return conflicts

    @staticmethod
    def _insertReplicas(conn: Connection, rows: list[dict]) -> None:
        if rows:
            conn.execute(insert(replicas), [{**row, "Status": REPLICA_STATUS} for row in rows])

    @staticmethod
    def _writeTarget(access: policy.PathAccess, view: CatalogView, path: str, wantFile: bool) -> str | None:
        """Why ``path`` cannot be written as a file (``wantFile``) or directory; None when it can."""
        reason = access.write(path)
        if reason:
            return reason
        blocker = view.blockingFile(path)
        if blocker:
            return f"Not a directory: {blocker} is a file"
        if wantFile and view.kind(path) == "Directory":
            return f"Is a directory: {path}"
        if not wantFile and view.kind(path) == "File":
            return f"File exists: {path} is a file"
        return None

    # ------------------------------------------------------------------ files

    @_bulkCall(fcInput.checkFileInfo, write=True)
    def addFile(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """Register files: ``{lfn: {SE, Size, Checksum, ChecksumType?, GUID?, PFN?}}``.

        Missing parent directories are created owned by the caller. Registering
        an existing LFN again with the same size, checksum (and GUID, when given)
        succeeds and adds the replica; other metadata fail.
        """
        view = CatalogView(conn, items)
        access = policy.PathAccess(ident, view)
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        newFiles: dict[str, dict] = {}
        existing: dict[str, dict] = {}
        for path, info in items.items():
            reason = self._writeTarget(access, view, path, wantFile=True)
            if reason is None and path in view.files:
                reason = access.read(path)  # comparing with the registered metadata reads it
            if reason:
                failed[path] = reason
            elif path in view.files:
                existing[path] = info
            else:
                newFiles[path] = info
        for path, reason in self._guidConflicts(conn, newFiles).items():
            failed[path] = reason
            del newFiles[path]
        missingDirs = {ancestor for path in newFiles for ancestor in view.missingDirectories(path)}
        for path in list(newFiles):
            reason = fcInput.checkDirectoryPath(parentOf(path))
            if path in missingDirs:
                reason = f"{path} is also the parent directory of another LFN of this request"
            if reason:
                failed[path] = reason
                del newFiles[path]
        missingDirs = {ancestor for path in newFiles for ancestor in view.missingDirectories(path)}
        self._createDirectories(conn, view, ident, missingDirs)

        now = _now()
        rows = [
            {
                "DirID": view.dirs[parentOf(path)].DirID,
                "FileName": path.rpartition("/")[2],
                "Size": info["Size"],
                "Checksum": info["Checksum"],
                "ChecksumType": info["ChecksumType"],
                "GUID": info["GUID"],
                "Owner": ident.username or policy.ROOT_OWNER,
                "OwnerGroup": ident.group or policy.ROOT_GROUP,
                "Mode": self.defaultFileMode,
                "CreationDate": now,
                "ModificationDate": now,
                "Status": FILE_STATUS,
            }
            for path, info in newFiles.items()
        ]
        if rows:
            conn.execute(insert(files), rows)
        fileIds = self._fileIds(conn, view, newFiles)
        replicaRows = [
            {"FileID": fileIds[path], "SE": info["SE"], "PFN": info["PFN"]} for path, info in newFiles.items()
        ]
        successful.update(dict.fromkeys(newFiles, True))

        known = self._replicaSEs(conn, [view.files[path].FileID for path in existing])
        for path, info in existing.items():
            row = view.files[path]
            mismatch = [
                name
                for name, same in (
                    ("Size", row.Size == info["Size"]),
                    ("Checksum", row.Checksum == info["Checksum"]),
                    ("GUID", not info["GUIDGiven"] or row.GUID == info["GUID"]),
                )
                if not same
            ]
            if mismatch:
                failed[path] = f"File already registered with different metadata ({', '.join(mismatch)})"
                continue
            if info["SE"] not in known.get(row.FileID, {}):
                replicaRows.append({"FileID": row.FileID, "SE": info["SE"], "PFN": info["PFN"]})
            successful[path] = True
        self._insertReplicas(conn, replicaRows)
        return successful, failed

    @_bulkCall(fcInput.checkReplicaInfo, write=True)
    def addReplica(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """Register replicas of existing files: ``{lfn: {SE, PFN?}}``; an already known replica succeeds."""
        view = CatalogView(conn, items)
        access = policy.PathAccess(ident, view)
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        candidates = {}
        for path, info in items.items():
            reason = self._writeTarget(access, view, path, wantFile=True)
            if reason is None and path not in view.files:
                reason = f"{NO_SUCH}: {path}"
            if reason:
                failed[path] = reason
            else:
                candidates[path] = info
        known = self._replicaSEs(conn, [view.files[path].FileID for path in candidates])
        rows = []
        for path, info in candidates.items():
            fileId = view.files[path].FileID
            current = known.get(fileId, {})
            if info["SE"] not in current:
                rows.append({"FileID": fileId, "SE": info["SE"], "PFN": info["PFN"]})
            elif info["PFN"] and current[info["SE"]] != info["PFN"]:
                conn.execute(
                    update(replicas)
                    .where(replicas.c.FileID == fileId, replicas.c.SE == info["SE"])
                    .values(PFN=info["PFN"])
                )
            successful[path] = True
        self._insertReplicas(conn, rows)
        return successful, failed

    @staticmethod
    def _deletable(
        access: policy.PathAccess, view: CatalogView, items: Iterable[str], failed: dict, wantFile: bool
    ) -> list[str]:
        """Existing entries of the wanted kind that the caller may delete; failures noted, absent ones skipped."""
        allowed = []
        for path in items:
            reason = access.delete(path)
            if reason:
                failed[path] = reason
            elif wantFile and view.kind(path) == "Directory":
                failed[path] = f"Is a directory: {path}"
            elif not wantFile and view.kind(path) == "File":
                failed[path] = f"Not a directory: {path} is a file"
            elif view.kind(path) is not None:
                allowed.append(path)
        return allowed

    @_bulkCall(write=True)
    def removeFile(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """Remove files and their replicas; an LFN that is not registered counts as removed (as in DIRAC)."""
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        doomed = self._deletable(policy.PathAccess(ident, view), view, items, failed, wantFile=True)
        fileIds = [view.files[path].FileID for path in doomed]
        for chunk in chunks(fileIds):
            conn.execute(delete(replicas).where(replicas.c.FileID.in_(chunk)))
            conn.execute(delete(files).where(files.c.FileID.in_(chunk)))
        return {path: True for path in items if path not in failed}, failed

    @_bulkCall(fcInput.checkReplicaSE, write=True)
    def removeReplica(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """Remove replicas ``{lfn: {SE}}``; a replica or file that is not registered counts as removed."""
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        doomed = self._deletable(policy.PathAccess(ident, view), view, items, failed, wantFile=True)
        if doomed:
            statement = delete(replicas).where(
                replicas.c.FileID == bindparam("fileId"), replicas.c.SE == bindparam("se")
            )
            conn.execute(statement, [{"fileId": view.files[path].FileID, "se": items[path]} for path in doomed])
        return {path: True for path in items if path not in failed}, failed

    @_bulkCall()
    def getReplicas(
        self, conn: Connection, ident: policy.Identity, items: dict, allStatus: bool = False
    ) -> tuple[dict, dict]:
        """``{lfn: {SE: PFN}}`` (PFN '' when none was registered); unknown LFNs fail."""
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        found = self._readable(ident, view, items, failed, wantFile=True)
        fileIds = [view.files[path].FileID for path in found]
        byId = self._replicaSEs(conn, fileIds, None if allStatus else REPLICA_STATUS)
        return {path: byId.get(view.files[path].FileID, {}) for path in found}, failed

    @_bulkCall()
    def getFileMetadata(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{lfn: {Size, Checksum, ChecksumType, GUID, Owner, OwnerGroup, Mode, CreationDate, ...}}``."""
        view = CatalogView(conn, items)
        successful: dict[str, dict] = {}
        failed: dict[str, str] = {}
        for path in self._readable(ident, view, items, failed, wantFile=True):
            successful[path] = _fileMetadata(view.files[path])
        return successful, failed

    @_bulkCall()
    def getFileSize(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{lfn: size}``."""
        view = CatalogView(conn, items)
        successful: dict[str, int] = {}
        failed: dict[str, str] = {}
        for path in self._allowedPaths(policy.PathAccess(ident, view).read, items, failed):
            if path in view.files:
                successful[path] = view.files[path].Size
            else:
                failed[path] = f"{NO_SUCH}: {path}"
        return successful, failed

    # ------------------------------------------------------------------ existence

    def _kindQuery(self, conn: Connection, ident: policy.Identity, items: dict, test: Callable) -> tuple[dict, dict]:
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        lookup = policy.PathAccess(ident, view).lookup
        return {path: test(view.kind(path)) for path in self._allowedPaths(lookup, items, failed)}, failed

    @_bulkCall()
    def exists(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{lfn: True/False}``: is a file or directory registered there?"""
        return self._kindQuery(conn, ident, items, lambda kind: kind is not None)

    @_bulkCall()
    def isFile(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{lfn: True/False}``."""
        return self._kindQuery(conn, ident, items, lambda kind: kind == "File")

    @_bulkCall()
    def isDirectory(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{lfn: True/False}``."""
        return self._kindQuery(conn, ident, items, lambda kind: kind == "Directory")

    # ------------------------------------------------------------------ directories

    @_bulkCall()
    def getDirectoryMetadata(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{path: {DirID, Owner, OwnerGroup, Mode, CreationDate, ModificationDate, Type}}``."""
        view = CatalogView(conn, items)
        successful: dict[str, dict] = {}
        failed: dict[str, str] = {}
        for path in self._readable(ident, view, items, failed, wantFile=False):
            successful[path] = _dirMetadata(view.dirs[path])
        return successful, failed

    def _listingPage(
        self, conn: Connection, ident: policy.Identity, directory: Any, verbose: bool, marker: str, limit: int
    ) -> tuple[dict, str]:
        """(listing, next marker) of at most ``limit`` entries of ``directory`` after ``marker``.

        Keyset pagination in name order: subdirectories (``D<last path>``), then files
        (``F<last name>``); each page is one or two index range scans of ``limit + 1`` rows,
        whatever the size of the directory. The next marker is '' after the last entry.
        Each entry shows what ``ident`` may see of it (``policy.visibleEntry``).
        """
        listing: dict[str, Any] = {"Files": {}, "SubDirs": {}, "Links": {}, "Datasets": {}}
        canStat = self._allows(policy.mayExecute, ident, directory)
        kind, after = (marker[:1], marker[1:]) if marker else ("D", "")
        remaining = limit
        if kind == "D":
            query = select(directories).where(directories.c.ParentID == directory.DirID)
            if after:
                query = query.where(directories.c.Path > after)
            rows = conn.execute(query.order_by(directories.c.Path).limit(remaining + 1)).all()
            for row in rows[:remaining]:
                listing["SubDirs"][row.Path] = policy.visibleEntry(_dirMetadata(row), canStat, True)
            if len(rows) > remaining:
                return listing, "D" + rows[remaining - 1].Path
            remaining -= len(rows)
            after = ""
            if remaining == 0:
                return listing, "F"
        query = select(files).where(files.c.DirID == directory.DirID)
        if after:
            query = query.where(files.c.FileName > after)
        rows = conn.execute(query.order_by(files.c.FileName).limit(remaining + 1)).all()
        readable = {row.FileID for row in rows[:remaining] if canStat and self._allows(policy.mayRead, ident, row)}
        replicaMap = self._replicaSEs(conn, readable) if verbose else {}
        for row in rows[:remaining]:
            entry: dict[str, Any] = {
                "MetaData": policy.visibleEntry(_fileMetadata(row), canStat, row.FileID in readable)
            }
            if verbose and row.FileID in readable:
                entry["Replicas"] = replicaMap.get(row.FileID, {})
            listing["Files"][joinPath(directory.Path, row.FileName)] = entry
        return listing, ("F" + rows[remaining - 1].FileName) if len(rows) > remaining else ""

    @_bulkCall()
    def listDirectory(
        self, conn: Connection, ident: policy.Identity, items: dict, verbose: bool = False
    ) -> tuple[dict, dict]:
        """``{path: {'Files': {lfn: {'MetaData': ...}}, 'SubDirs': {path: meta}, 'Links': {}, 'Datasets': {}}}``.

        With ``verbose`` each file also carries its ``Replicas`` ``{SE: PFN}``. Listing needs ``r`` on
        the directory; the entries' metadata needs ``x`` on it too, and a file's content fields
        (size, checksum, GUID, status, replicas) ``r`` on the file (``policy.visibleEntry``). The answer
        is bounded: a directory with more than ``maxListing`` entries fails with a pointer to
        ``listDirectoryPage`` (which our ``FileCatalogClient.listDirectory`` uses page by page).
        """
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        successful: dict[str, dict] = {}
        for path in self._readable(ident, view, items, failed, wantFile=False):
            listing, more = self._listingPage(conn, ident, view.dirs[path], verbose, "", self.maxListing)
            if more:
                failed[path] = (
                    f"Directory has more than {self.maxListing} entries: list it page by page (listDirectoryPage)"
                )
            else:
                successful[path] = listing
        return successful, failed

    def listDirectoryPage(
        self, lfns: Any, credDict: dict | None = None, verbose: bool = False, marker: str = "", limit: int = LIST_PAGE
    ) -> dict:
        """One page of one directory: ``{path: {'Files', 'SubDirs', 'Links', 'Datasets', 'Next'}}``.

        At most ``limit`` (1..``MAX_LIST_PAGE``) entries in name order, subdirectories
        first; ``Next`` is the ``marker`` of the following page, '' after the last one.
        Permissions are checked again for every page, so a marker grants nothing; what each
        entry shows follows the same rules as ``listDirectory``.
        """
        if isinstance(lfns, (list, dict)) and len(lfns) != 1:
            return S_ERROR(DErrno.EINVAL, f"listDirectoryPage lists one directory, got {len(lfns)}")
        if not isinstance(marker, str) or len(marker) > MAX_DIR_PATH + 1 or (marker and marker[0] not in "DF"):
            return S_ERROR(DErrno.EINVAL, f"listDirectoryPage: not a marker from a previous page: {str(marker)[:80]!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_PAGE:
            return S_ERROR(DErrno.EINVAL, f"listDirectoryPage: limit must be an integer from 1 to {MAX_LIST_PAGE}")
        return self._listDirectoryPage(lfns, credDict, verbose is True, marker, limit)

    @_bulkCall()
    def _listDirectoryPage(
        self, conn: Connection, ident: policy.Identity, items: dict, verbose: bool, marker: str, limit: int
    ) -> tuple[dict, dict]:
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        successful: dict[str, dict] = {}
        for path in self._readable(ident, view, items, failed, wantFile=False):
            listing, more = self._listingPage(conn, ident, view.dirs[path], verbose, marker, limit)
            successful[path] = {**listing, "Next": more}
        return successful, failed

    @_bulkCall(write=True)
    def createDirectory(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """Create directories (and missing parents, owned by the caller); an existing directory succeeds."""
        view = CatalogView(conn, items)
        access = policy.PathAccess(ident, view)
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        wanted: set[str] = set()
        for path in items:
            reason = self._writeTarget(access, view, path, wantFile=False) or fcInput.checkDirectoryPath(path)
            if reason:
                failed[path] = reason
                continue
            successful[path] = True
            if path not in view.dirs:
                wanted.add(path)
                wanted.update(view.missingDirectories(path))
        self._createDirectories(conn, view, ident, wanted)
        return successful, failed

    @_bulkCall(write=True)
    def removeDirectory(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """Remove empty directories; an absent one counts as removed. '/' is never removed."""
        view = CatalogView(conn, items)
        failed: dict[str, str] = {}
        if "/" in items:
            failed["/"] = f"{PERMISSION_DENIED}: the root directory cannot be removed"
        access = policy.PathAccess(ident, view)
        doomed = self._deletable(access, view, [path for path in items if path != "/"], failed, wantFile=False)
        ids = {view.dirs[path].DirID: path for path in doomed}
        children: dict[int, set[int]] = {dirId: set() for dirId in ids}
        withFiles: set[int] = set()
        for chunk in chunks(ids):
            for row in conn.execute(
                select(directories.c.DirID, directories.c.ParentID).where(directories.c.ParentID.in_(chunk))
            ):
                children[row.ParentID].add(row.DirID)
            query = select(files.c.DirID).where(files.c.DirID.in_(chunk)).group_by(files.c.DirID)
            withFiles.update(row.DirID for row in conn.execute(query))
        removed: set[int] = set()
        for dirId in sorted(ids, key=lambda key: ids[key].count("/"), reverse=True):
            if dirId in withFiles or not children[dirId] <= removed:
                failed[ids[dirId]] = f"Directory not empty: {ids[dirId]}"
            else:
                removed.add(dirId)
        deepestFirst = sorted(removed, key=lambda key: ids[key].count("/"), reverse=True)
        for dirId in deepestFirst:
            conn.execute(delete(directories).where(directories.c.DirID == dirId))
        return {path: True for path in items if path not in failed}, failed

    # ------------------------------------------------------------------ ownership and mode

    def _changePath(
        self,
        conn: Connection,
        ident: policy.Identity,
        items: dict,
        column: str,
        recursive: bool,
        opClass: str,
    ) -> tuple[dict, dict]:
        view = CatalogView(conn, items)
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        now = _now()
        access = policy.PathAccess(ident, view)
        for path, value in items.items():
            if opClass == policy.CHOWN:
                reason = access.chown(path)
            else:
                reason = access.change(path, value if column == "OwnerGroup" else None)
            if reason:
                failed[path] = reason
                continue
            row = view.files.get(path) or view.dirs.get(path)
            values = {column: value, "ModificationDate": now}
            if path in view.files:
                conn.execute(update(files).where(files.c.FileID == row.FileID).values(**values))
            else:
                self._changeDirectory(conn, ident, path, values, recursive)
            successful[path] = True
        return successful, failed

    @staticmethod
    def _changeDirectory(conn: Connection, ident: policy.Identity, path: str, values: dict, recursive: bool) -> None:
        if not recursive:
            conn.execute(update(directories).where(directories.c.Path == path).values(**values))
            return
        # Recursively: the directory and everything below it that the caller may change.
        prefix = "" if path == "/" else path
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        below = or_(directories.c.Path == path, directories.c.Path.like(f"{escaped}/%", escape="\\"))
        dirFilter = and_(below, directories.c.Owner == ident.username) if not ident.isManager else below
        conn.execute(update(directories).where(dirFilter).values(**values))
        fileFilter = files.c.DirID.in_(select(directories.c.DirID).where(below))
        if not ident.isManager:
            fileFilter = and_(fileFilter, files.c.Owner == ident.username)
        conn.execute(update(files).where(fileFilter).values(**values))

    @_bulkCall(fcInput.checkOwner, write=True)
    def changePathOwner(
        self, conn: Connection, ident: policy.Identity, items: dict, recursive: bool = False
    ) -> tuple[dict, dict]:
        """Give paths ``{path: owner}`` to another user (catalog managers only)."""
        return self._changePath(conn, ident, items, "Owner", recursive, policy.CHOWN)

    @_bulkCall(fcInput.checkGroup, write=True)
    def changePathGroup(
        self, conn: Connection, ident: policy.Identity, items: dict, recursive: bool = False
    ) -> tuple[dict, dict]:
        """Set the group ``{path: group}``: owner (to one of their groups) or manager."""
        return self._changePath(conn, ident, items, "OwnerGroup", recursive, policy.CHANGE)

    @_bulkCall(fcInput.checkMode, write=True)
    def changePathMode(
        self, conn: Connection, ident: policy.Identity, items: dict, recursive: bool = False
    ) -> tuple[dict, dict]:
        """Set the mode ``{path: int}`` (0..0o777): owner or manager."""
        return self._changePath(conn, ident, items, "Mode", recursive, policy.CHANGE)

    # ------------------------------------------------------------------ access

    def hasAccess(self, paths: Any, opType: Any, credDict: dict | None = None) -> dict:
        """``{'Successful': {lfn: True/False}, 'Failed': {...}}``: may the caller do ``opType`` on each path?

        ``opType`` is a DIRAC method name (``addFile``, ``getFileMetadata``,
        ``removeFile``, ...) or one of ``Read``, ``Write``, ``Delete``. The older
        DIRAC argument order ``(opType, paths)`` is accepted too.
        """
        if policy.classifyOperation(paths) and not policy.classifyOperation(opType):
            paths, opType = opType, paths
        opClass = policy.classifyOperation(opType)
        if opClass is None:
            return S_ERROR(DErrno.EINVAL, f"Unknown operation type for hasAccess: {opType!r}")
        return self._hasAccess(paths, credDict, opClass)

    @_bulkCall()
    def _hasAccess(self, conn: Connection, ident: policy.Identity, items: dict, opClass: str) -> tuple[dict, dict]:
        access = policy.PathAccess(ident, CatalogView(conn, items))
        return {path: access.check(opClass, path) is None for path in items}, {}

    @_bulkCall()
    def getPathPermissions(self, conn: Connection, ident: policy.Identity, items: dict) -> tuple[dict, dict]:
        """``{lfn: {'Read': bool, 'Write': bool, 'Execute': bool}}`` for the caller, as in DIRAC (POSIX bits)."""
        access = policy.PathAccess(ident, CatalogView(conn, items))
        checks = (("Read", access.read), ("Write", access.write), ("Execute", access.execute))
        return {path: {name: check(path) is None for name, check in checks} for path in items}, {}

    # ------------------------------------------------------------------ statistics

    def getCatalogCounters(self, credDict: dict | None = None) -> dict:
        """S_OK({'Directories': n, 'Files': n, 'Replicas': n})."""
        if not self._connected:
            return S_ERROR(DErrno.EIO, f"FileCatalogDB is not connected: {self.connectionError}")

        def count(conn: Connection) -> dict:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in (("Directories", directories), ("Files", files), ("Replicas", replicas))
            }

        try:
            return S_OK(runTransaction(self.engine, count, write=False))
        except SQLAlchemyError as exc:
            return S_ERROR(DErrno.EIO, f"FileCatalogDB.getCatalogCounters: database error: {exc.__class__.__name__}")

"""The file catalog's permission policy: who may reach, read, list, write, delete or change what.

Pure decisions over (identity, owner, group, mode) and over the rows a bulk call
loaded (a ``FileCatalogView.CatalogView``); no database access, so the rules
are small enough to read in one go and are tested on their own. The rules in
words are in ``docs/FileCatalogPolicy.rst`` (and the README); in short, POSIX:

* Classes: the owner's bits apply to the owner, else the group's bits to
  members of the owning group (the caller's current DIRAC group), else the
  others' bits. ``r`` (4) reads or lists, ``w`` (2) writes, ``x`` (1) searches.
* Callers with the property ``FileCatalogManagement`` may do everything.
* Reach: every existing ancestor directory of a path needs ``x``; an
  unreachable path is refused naming the first directory without ``x``, the
  same answer whether the path exists or not.
* Read (metadata, replicas, the gateway's GET/HEAD): reach, then ``r`` on the
  entry itself, or, when nothing is registered there, on its nearest existing
  ancestor directory. Listing a directory is reading it. Lookup (exists,
  isFile, isDirectory) needs reach only, as POSIX ``stat``.
* Write (addFile, addReplica, createDirectory, ...): reach (so ``x`` on the
  directory written into) and ``w`` on the nearest existing ancestor directory;
  an existing file needs ``w`` itself too. A caller's own home
  ``/<vo>/user/<u>/<username>`` counts as writable while it does not exist
  yet: it is then created for the caller.
* Delete (removeFile, removeReplica, removeDirectory): reach and ``w`` on the
  parent directory.
* Change (chmod/chgrp): reach, and the owner or a manager; chown: reach and a
  manager; the owner may only give a path to a group the owner belongs to.
* Writes need a DIRAC user name and group in the credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from DIRAC.DataManagementSystem.DB.FileCatalogView import parentOf

#: Property that bypasses every check (DIRAC's ``FC_MANAGEMENT``).
FC_MANAGEMENT = "FileCatalogManagement"

#: Owner and group of the catalog's own levels: ``/``, ``/<vo>``, ``/<vo>/user``, ``/<vo>/user/<initial>``.
ROOT_OWNER = "root"
ROOT_GROUP = "root"
#: Mode of those levels: readable by all, writable by nobody but managers.
SYSTEM_DIR_MODE = 0o755
#: Mode of a user's home when the catalog creates it: only the user writes there.
HOME_DIR_MODE = 0o755
#: Defaults for new directories and files (umask 022): only the owner writes.
DEFAULT_DIR_MODE = 0o755
DEFAULT_FILE_MODE = 0o644

READ = "Read"
LOOKUP = "Lookup"
WRITE = "Write"
DELETE = "Delete"
CHANGE = "Change"
CHOWN = "ChangeOwner"

_R = 4
_W = 2
_X = 1

NO_SUCH = "No such file or directory"
PERMISSION_DENIED = "Permission denied"
NO_OWNER = f"{PERMISSION_DENIED}: the credentials carry no DIRAC user name and group"

#: DIRAC method names (and the generic words) mapped to the kind of access they need.
OPERATION_CLASSES: dict[str, str] = {
    **dict.fromkeys(
        [
            "Read",
            "read",
            "getFileMetadata",
            "getFileSize",
            "getReplicas",
            "getReplicaStatus",
            "getDirectoryMetadata",
            "getDirectoryReplicas",
            "getDirectorySize",
            "listDirectory",
            "getPathPermissions",
            "getFileAncestors",
            "getFileDescendents",
            "getLFNForGUID",
            # StorageElement names, as the S3 gateway maps S3 operations (get_object -> getFile)
            "getFile",
            "getAccessUrl",
            "getURL",
            "getTransportURL",
        ],
        READ,
    ),
    **dict.fromkeys(["Lookup", "exists", "isFile", "isDirectory"], LOOKUP),
    **dict.fromkeys(
        [
            "Write",
            "write",
            "addFile",
            "addReplica",
            "createDirectory",
            "setFileStatus",
            "setReplicaStatus",
            "setReplicaHost",
            "addFileAncestors",
            "putAndRegister",
            "replicateAndRegister",
            "putFile",
            "replicateFile",
        ],
        WRITE,
    ),
    **dict.fromkeys(
        ["Delete", "delete", "removeFile", "removeReplica", "removeDirectory"],
        DELETE,
    ),
    **dict.fromkeys(["changePathMode", "changePathGroup", "Change"], CHANGE),
    **dict.fromkeys(["changePathOwner", "ChangeOwner"], CHOWN),
}


def classifyOperation(opType: object) -> str | None:
    """The access class (READ, LOOKUP, WRITE, DELETE, CHANGE, CHOWN) of an operation name, None if unknown."""
    if not isinstance(opType, str):
        return None
    return OPERATION_CLASSES.get(opType)


@dataclass(frozen=True)
class Identity:
    """Who calls: DIRAC user name, current group, properties and VO (when known)."""

    username: str = ""
    group: str = ""
    properties: frozenset[str] = field(default_factory=frozenset)
    vo: str = ""
    #: Every group the user belongs to (for chgrp); the current group when unknown.
    groups: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def fromCredentials(
        cls,
        credDict: object,
        voResolver: Callable[[str], str | None] | None = None,
        groupsResolver: Callable[[str], Iterable[str] | None] | None = None,
    ) -> Identity:
        """Build from a DIRAC credentials dict (``username``, ``group``, ``properties``, optional ``VO``)."""
        if not isinstance(credDict, dict):
            return cls()
        username = _text(credDict.get("username"))
        group = _text(credDict.get("group"))
        rawProperties = credDict.get("properties") or []
        if isinstance(rawProperties, str):
            rawProperties = [item.strip() for item in rawProperties.split(",")]
        properties = frozenset(str(item) for item in rawProperties if item)
        vo = _text(credDict.get("VO"))
        if not vo and group and voResolver is not None:
            vo = _text(voResolver(group))
        groups = {group} if group else set()
        if username and groupsResolver is not None:
            groups.update(_text(item) for item in (groupsResolver(username) or []))
        return cls(username, group, properties, vo, frozenset(item for item in groups if item))

    @property
    def isManager(self) -> bool:
        """Managers (``FileCatalogManagement``) bypass every check."""
        return FC_MANAGEMENT in self.properties

    @property
    def canOwn(self) -> bool:
        """Only callers with a user name and a group may create entries (they become the owner)."""
        return bool(self.username and self.group)

    @property
    def home(self) -> str | None:
        """``/<vo>/user/<initial>/<username>`` or None when the VO or user name is unknown."""
        if not self.vo or not self.username or "/" in self.username or "/" in self.vo:
            return None
        return f"/{self.vo}/user/{self.username[0]}/{self.username}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _bits(identity: Identity, owner: str, group: str, mode: int) -> int:
    # "root" is reserved for the catalog's own levels: a DIRAC user or group of that
    # name gets no owner or group rights from it (managers do not need them).
    if identity.username and identity.username == owner and owner != ROOT_OWNER:
        return (mode >> 6) & 7
    if identity.group and identity.group == group and group != ROOT_GROUP:
        return (mode >> 3) & 7
    return mode & 7


def mayRead(identity: Identity, owner: str, group: str, mode: int) -> bool:
    """May ``identity`` read an entry with this owner, group and mode?"""
    return identity.isManager or bool(_bits(identity, owner, group, mode) & _R)


def mayExecute(identity: Identity, owner: str, group: str, mode: int) -> bool:
    """May ``identity`` search (pass through) a directory with this owner, group and mode?"""
    return identity.isManager or bool(_bits(identity, owner, group, mode) & _X)


def mayWrite(identity: Identity, owner: str, group: str, mode: int) -> bool:
    """May ``identity`` write into a directory with this owner, group and mode?"""
    if identity.isManager:
        return True
    return identity.canOwn and bool(_bits(identity, owner, group, mode) & _W)


def mayChange(identity: Identity, owner: str) -> bool:
    """May ``identity`` chmod/chgrp an entry owned by ``owner``?"""
    return identity.isManager or (identity.canOwn and identity.username == owner and owner != ROOT_OWNER)


def mayGiveToGroup(identity: Identity, owner: str, newGroup: str) -> bool:
    """May ``identity`` give an entry owned by ``owner`` to ``newGroup``?"""
    if identity.isManager:
        return True
    return mayChange(identity, owner) and (newGroup == identity.group or newGroup in identity.groups)


def mayChown(identity: Identity) -> bool:
    """Only managers give entries away to another owner."""
    return identity.isManager


def isSystemLevel(path: str) -> bool:
    """``/``, ``/<vo>``, ``/<vo>/user`` and ``/<vo>/user/<initial>``: always created owned by root."""
    parts = [part for part in path.split("/") if part]
    if len(parts) <= 1:
        return True
    if parts[1] != "user":
        return False
    return len(parts) == 2 or (len(parts) == 3 and len(parts[2]) == 1)


def isWithin(path: str, top: str) -> bool:
    """True when ``path`` is ``top`` or below it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def newDirectoryOwnership(identity: Identity, path: str, defaultMode: int) -> tuple[str, str, int]:
    """(owner, group, mode) of a directory the catalog creates at ``path`` for ``identity``."""
    if isSystemLevel(path):
        return ROOT_OWNER, ROOT_GROUP, SYSTEM_DIR_MODE
    if identity.home is not None and path == identity.home:
        return identity.username, identity.group, HOME_DIR_MODE
    return identity.username, identity.group, defaultMode


def mayWriteBelow(identity: Identity, target: str, nearestDir: str, owner: str, group: str, mode: int) -> bool:
    """Write decision for ``target`` whose nearest existing ancestor directory is ``nearestDir``.

    Besides the directory's own bits, a caller may always create their own home
    (and what goes below it) while it does not exist yet.
    """
    if mayWrite(identity, owner, group, mode):
        return True
    home = identity.home
    if home is None or not identity.canOwn:
        return False
    # The home is missing exactly when the nearest existing directory lies strictly above it.
    return isWithin(target, home) and isWithin(home, nearestDir) and nearestDir != home


#: File metadata anyone who may list the directory sees (``ls -l``): no content, no identifiers.
STAT_FIELDS = ("Owner", "OwnerGroup", "Mode", "CreationDate", "ModificationDate", "Type")


def visibleEntry(metadata: dict, canStat: bool, canRead: bool) -> dict:
    """What a listing shows of one entry: everything when readable, the stat fields when only
    the directory may be searched, just the type when the directory may only be read."""
    if canStat and canRead:
        return metadata
    if canStat:
        return {name: metadata[name] for name in STAT_FIELDS if name in metadata}
    return {"Type": metadata.get("Type", "")}


class Entry(Protocol):
    """What the policy reads of a catalog row (directory or file)."""

    Owner: str
    OwnerGroup: str
    Mode: int


class View(Protocol):
    """The entries a bulk call loaded: every existing directory among the paths and their
    ancestors, and the files at the paths (see ``FileCatalogView.CatalogView``)."""

    dirs: Mapping[str, Any]
    files: Mapping[str, Any]

    def nearestDir(self, path: str) -> Any: ...


class PathAccess:
    """The decisions for one caller over one loaded view.

    Each check returns None when allowed, else the reason (``Permission denied: ...``
    naming the directory or entry that refuses). Reachability is computed once per
    directory, so a bulk call costs O(paths x depth) in memory and no query.
    """

    def __init__(self, identity: Identity, view: View):
        self.identity = identity
        self.view = view
        self._reach: dict[str, str | None] = {"/": None}

    def _allows(self, test: Callable[..., bool], row: Entry) -> bool:
        return test(self.identity, row.Owner, row.OwnerGroup, row.Mode)

    def _dirReach(self, directory: str) -> str | None:
        """Why the contents of ``directory`` cannot be reached (None when they can): x on it and its ancestors."""
        if directory in self._reach:
            return self._reach[directory]
        reason = self._dirReach(parentOf(directory))
        row = self.view.dirs.get(directory)
        if reason is None and row is not None and not self._allows(mayExecute, row):
            reason = f"{PERMISSION_DENIED}: no search permission on {directory}"
        self._reach[directory] = reason
        return reason

    def reach(self, path: str) -> str | None:
        """Why ``path`` cannot be reached: an existing ancestor without ``x``; None when it can."""
        if self.identity.isManager or path == "/":
            return None
        return self._dirReach(parentOf(path))

    def _entry(self, path: str) -> Entry | None:
        return self.view.files.get(path) or self.view.dirs.get(path)

    def lookup(self, path: str) -> str | None:
        """exists / isFile / isDirectory: reach only (POSIX ``stat``)."""
        return self.reach(path)

    def read(self, path: str) -> str | None:
        """Reach, then ``r`` on the entry, or on the nearest existing directory when nothing is there."""
        reason = self.reach(path)
        if reason:
            return reason
        row = self._entry(path)
        where = path
        if row is None:
            row = self.view.nearestDir(path)
            where = row.Path
        if not self._allows(mayRead, row):
            return f"{PERMISSION_DENIED}: no read permission on {where}"
        return None

    def execute(self, path: str) -> str | None:
        """Reach, then ``x`` on the entry (on the nearest existing directory when nothing is there)."""
        reason = self.reach(path)
        if reason:
            return reason
        row = self._entry(path) or self.view.nearestDir(path)
        return None if self._allows(mayExecute, row) else f"{PERMISSION_DENIED}: no execute permission on {path}"

    def write(self, path: str) -> str | None:
        """Reach and ``w`` on the nearest existing directory (own missing home included); ``w`` on an existing file."""
        if not self.identity.canOwn and not self.identity.isManager:
            return NO_OWNER
        reason = self.reach(path)
        if reason:
            return reason
        top = self.view.nearestDir(path)
        if not mayWriteBelow(self.identity, path, top.Path, top.Owner, top.OwnerGroup, top.Mode):
            return f"{PERMISSION_DENIED}: no write permission on {top.Path}"
        row = self.view.files.get(path)
        if row is not None and not self._allows(mayWrite, row):
            return f"{PERMISSION_DENIED}: no write permission on {path}"
        return None

    def delete(self, path: str) -> str | None:
        """Reach and ``w`` on the parent directory (a missing parent in the caller's own home counts as theirs)."""
        if not self.identity.canOwn and not self.identity.isManager:
            return NO_OWNER
        reason = self.reach(path)
        if reason:
            return reason
        top = self.view.nearestDir(path)
        parent = parentOf(path)
        if top.Path == parent:
            allowed = self._allows(mayWrite, top)
        else:
            allowed = mayWriteBelow(self.identity, parent, top.Path, top.Owner, top.OwnerGroup, top.Mode)
        return None if allowed else f"{PERMISSION_DENIED}: no write permission on {top.Path}"

    def change(self, path: str, newGroup: str | None = None) -> str | None:
        """chmod (chgrp to ``newGroup``): reach, an existing entry, the owner (to one of their groups) or a manager."""
        reason = self.reach(path)
        if reason:
            return reason
        row = self._entry(path)
        if row is None:
            return f"{NO_SUCH}: {path}"
        if not mayChange(self.identity, row.Owner):
            return f"{PERMISSION_DENIED}: only the owner or a catalog manager may change {path}"
        if newGroup is not None and not mayGiveToGroup(self.identity, row.Owner, newGroup):
            return f"{PERMISSION_DENIED}: {self.identity.username} is not a member of group {newGroup}"
        return None

    def chown(self, path: str) -> str | None:
        """chown: reach, an existing entry, and a manager."""
        reason = self.reach(path)
        if reason:
            return reason
        if self._entry(path) is None:
            return f"{NO_SUCH}: {path}"
        if not mayChown(self.identity):
            return f"{PERMISSION_DENIED}: only managers (FileCatalogManagement) may change the owner of {path}"
        return None

    def check(self, opClass: str, path: str) -> str | None:
        """Why ``opClass`` (READ, LOOKUP, WRITE, DELETE, CHANGE, CHOWN) is refused on ``path``; None if allowed."""
        checks = {
            READ: self.read,
            LOOKUP: self.lookup,
            WRITE: self.write,
            DELETE: self.delete,
            CHANGE: self.change,
            CHOWN: self.chown,
        }
        return checks[opClass](path)

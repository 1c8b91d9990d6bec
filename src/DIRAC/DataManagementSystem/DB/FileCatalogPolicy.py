"""The file catalog's permission policy: who may read, write, delete or change what.

Pure decisions over (identity, owner, group, mode); no database access, so the
rules are small enough to read in one go and are tested on their own. The
rules in words are in ``docs/FileCatalogPolicy.rst``; in short:

* POSIX classes: the owner's bits apply to the owner, else the group's bits to
  members of the owning group (the caller's current DIRAC group), else the
  others' bits. ``r`` (4) is needed to read, ``w`` (2) to write.
* Callers with the property ``FileCatalogManagement`` may do everything.
* Read: the file, or the directory itself, or (when the path does not exist)
  its nearest existing ancestor directory must be readable.
* Write (addFile, addReplica, createDirectory, ...) and Delete (removeFile,
  removeReplica, removeDirectory): the nearest existing ancestor directory must
  be writable. A caller's own home ``/<vo>/user/<u>/<username>`` counts as
  writable while it does not exist yet: it is then created for the caller.
* Change (chmod/chgrp): the owner or a manager; chown: managers only; the
  owner may only give a path to a group the owner belongs to.
* Writes need a DIRAC user name and group in the credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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
WRITE = "Write"
DELETE = "Delete"
CHANGE = "Change"
CHOWN = "ChangeOwner"

_R = 4
_W = 2

#: DIRAC method names (and the generic words) mapped to the kind of access they need.
OPERATION_CLASSES: dict[str, str] = {
    **dict.fromkeys(
        [
            "Read",
            "read",
            "exists",
            "isFile",
            "isDirectory",
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
    """The access class (READ, WRITE, DELETE, CHANGE, CHOWN) of an operation name, None if unknown."""
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
    return mayChange(identity, owner) and newGroup in identity.groups


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

"""FileCatalogHandler: the ``DataManagement/FileCatalog`` service.

A thin layer over ``FileCatalogDB``: each exported method hands the caller's
credentials (as established by the RPC layer, delegation included) to the DB,
which decides permissions and answers ``{'Successful', 'Failed'}``. The service
keeps no state besides the DB connection, so any number of copies can serve
one database.

Configuration (``/Systems/DataManagement/Services/FileCatalog``):
``DefaultDirectoryMode`` / ``DefaultFileMode`` (octal, default 755 / 644),
``MaxLFNsPerCall`` (default 20000; a bigger call is refused, our client splits). The
database URL is ``/Systems/DataManagement/Databases/FileCatalogDB/URL``, else
an SQLite file ``<InstancePath>/work/FileCatalogDB.sqlite``.
"""

from __future__ import annotations

from typing import Any

from DIRAC.Core.DISET.RequestHandler import RequestHandler, getServiceOption
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.DB import FileCatalogPolicy as policy
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from DIRAC.FrameworkSystem.Client.Logger import gLogger

LFNS = [list, dict, str]
#: Most LFNs one call may carry (service option ``MaxLFNsPerCall``): bounds the memory of a call.
DEFAULT_MAX_LFNS = 20_000
log = gLogger.getSubLogger("FileCatalogHandler")


def _octalOption(serviceInfo: dict, name: str, default: int) -> dict:
    raw = str(getServiceOption(serviceInfo, name, f"{default:o}")).strip()
    try:
        mode = int(raw, 8)
    except ValueError:
        return S_ERROR(DErrno.ECONF, f"{name} must be an octal mode such as 755, got {raw!r}")
    if not 0 <= mode <= 0o777:
        return S_ERROR(DErrno.ECONF, f"{name} must be between 0 and 777 (octal), got {raw!r}")
    if mode & 0o002:
        return S_ERROR(DErrno.ECONF, f"{name} {raw} would let everybody write: refused")
    return S_OK(mode)


def _voForGroup(group: str) -> str:
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry

    return Registry.getVOForGroup(group)


def _groupsForUser(username: str) -> list[str]:
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry

    return Registry.getGroupsForUser(username).get("Value", [])


class FileCatalogHandler(RequestHandler):
    """DIRAC's FileCatalog service API over ``FileCatalogDB``."""

    fileCatalogDB: FileCatalogDB | None = None

    @classmethod
    def initializeHandler(cls, serviceInfo: dict) -> dict:
        """Open the catalog database (URL from the configuration or the default SQLite file)."""
        modes = {}
        for name, default in (
            ("DefaultDirectoryMode", policy.DEFAULT_DIR_MODE),
            ("DefaultFileMode", policy.DEFAULT_FILE_MODE),
        ):
            result = _octalOption(serviceInfo, name, default)
            if not result["OK"]:
                return result
            modes[name] = result["Value"]
        database = FileCatalogDB(
            None,  # the configured URL, its password from the local configuration only
            defaultDirMode=modes["DefaultDirectoryMode"],
            defaultFileMode=modes["DefaultFileMode"],
            voResolver=_voForGroup,
            groupsResolver=_groupsForUser,
        )
        connected = database.isConnected()
        if not connected["OK"]:
            return S_ERROR(DErrno.EIO, f"cannot open the FileCatalogDB: {connected['Message']}")
        maxLFNs = str(getServiceOption(serviceInfo, "MaxLFNsPerCall", DEFAULT_MAX_LFNS)).strip()
        if not maxLFNs.isdigit() or int(maxLFNs) < 1:
            return S_ERROR(DErrno.ECONF, f"MaxLFNsPerCall must be a positive integer, got {maxLFNs!r}")
        database.maxLFNsPerCall = int(maxLFNs)
        cls.fileCatalogDB = database
        log.info("FileCatalogDB opened", database.url.split("@")[-1])  # never log a password embedded in the URL
        return S_OK()

    def _caller(self) -> dict:
        """The caller as the RPC layer established it; an unregistered caller keeps only its DN."""
        from DIRAC.Core.DISET.AuthManager import isAuthenticated

        credentials = self.getRemoteCredentials()
        if not isAuthenticated(credentials):
            return {"DN": credentials.get("DN", ""), "properties": []}
        return credentials

    # ------------------------------------------------------------------ files

    types_addFile = [LFNS]

    def export_addFile(self, lfns: Any) -> dict:
        """Register files ``{lfn: {SE, Size, Checksum, ChecksumType?, GUID?, PFN?}}``."""
        return self.fileCatalogDB.addFile(lfns, self._caller())

    types_addReplica = [LFNS]

    def export_addReplica(self, lfns: Any) -> dict:
        """Register replicas ``{lfn: {SE, PFN?}}``."""
        return self.fileCatalogDB.addReplica(lfns, self._caller())

    types_removeFile = [LFNS]

    def export_removeFile(self, lfns: Any) -> dict:
        """Remove files and their replicas."""
        return self.fileCatalogDB.removeFile(lfns, self._caller())

    types_removeReplica = [LFNS]

    def export_removeReplica(self, lfns: Any) -> dict:
        """Remove replicas ``{lfn: {SE}}``."""
        return self.fileCatalogDB.removeReplica(lfns, self._caller())

    types_getReplicas = [LFNS]

    def export_getReplicas(self, lfns: Any, allStatus: bool = False) -> dict:
        """``{lfn: {SE: PFN}}``."""
        return self.fileCatalogDB.getReplicas(lfns, self._caller(), allStatus is True)

    types_getFileMetadata = [LFNS]

    def export_getFileMetadata(self, lfns: Any) -> dict:
        """``{lfn: {Size, Checksum, ChecksumType, GUID, Owner, OwnerGroup, Mode, ...}}``."""
        return self.fileCatalogDB.getFileMetadata(lfns, self._caller())

    types_getFileSize = [LFNS]

    def export_getFileSize(self, lfns: Any) -> dict:
        """``{lfn: size}``."""
        return self.fileCatalogDB.getFileSize(lfns, self._caller())

    # ------------------------------------------------------------------ paths

    types_exists = [LFNS]

    def export_exists(self, lfns: Any) -> dict:
        """``{lfn: True/False}``."""
        return self.fileCatalogDB.exists(lfns, self._caller())

    types_isFile = [LFNS]

    def export_isFile(self, lfns: Any) -> dict:
        """``{lfn: True/False}``."""
        return self.fileCatalogDB.isFile(lfns, self._caller())

    types_isDirectory = [LFNS]

    def export_isDirectory(self, lfns: Any) -> dict:
        """``{lfn: True/False}``."""
        return self.fileCatalogDB.isDirectory(lfns, self._caller())

    types_listDirectory = [LFNS]

    def export_listDirectory(self, lfns: Any, verbose: bool = False) -> dict:
        """``{path: {'Files': {...}, 'SubDirs': {...}, 'Links': {}, 'Datasets': {}}}``."""
        return self.fileCatalogDB.listDirectory(lfns, self._caller(), verbose is True)

    types_listDirectoryPage = [LFNS]

    def export_listDirectoryPage(self, lfns: Any, verbose: bool = False, marker: str = "", limit: int = 1000) -> dict:
        """One page of one directory: ``{path: {'Files', 'SubDirs', 'Links', 'Datasets', 'Next': marker}}``."""
        return self.fileCatalogDB.listDirectoryPage(lfns, self._caller(), verbose is True, marker, limit)

    types_createDirectory = [LFNS]

    def export_createDirectory(self, lfns: Any) -> dict:
        """Create directories (and missing parents)."""
        return self.fileCatalogDB.createDirectory(lfns, self._caller())

    types_removeDirectory = [LFNS]

    def export_removeDirectory(self, lfns: Any) -> dict:
        """Remove empty directories."""
        return self.fileCatalogDB.removeDirectory(lfns, self._caller())

    types_getDirectoryMetadata = [LFNS]

    def export_getDirectoryMetadata(self, lfns: Any) -> dict:
        """``{path: {Owner, OwnerGroup, Mode, CreationDate, ModificationDate, ...}}``."""
        return self.fileCatalogDB.getDirectoryMetadata(lfns, self._caller())

    types_changePathOwner = [LFNS]

    def export_changePathOwner(self, lfns: Any, recursive: bool = False) -> dict:
        """``{path: owner}`` (catalog managers only)."""
        return self.fileCatalogDB.changePathOwner(lfns, self._caller(), recursive is True)

    types_changePathGroup = [LFNS]

    def export_changePathGroup(self, lfns: Any, recursive: bool = False) -> dict:
        """``{path: group}``."""
        return self.fileCatalogDB.changePathGroup(lfns, self._caller(), recursive is True)

    types_changePathMode = [LFNS]

    def export_changePathMode(self, lfns: Any, recursive: bool = False) -> dict:
        """``{path: mode}``."""
        return self.fileCatalogDB.changePathMode(lfns, self._caller(), recursive is True)

    # ------------------------------------------------------------------ access

    types_hasAccess = [[str, list, dict], [str, list, dict]]

    def export_hasAccess(self, paths: Any, opType: Any) -> dict:
        """``{lfn: True/False}`` for ``opType`` (a DIRAC method name, Read, Write or Delete).

        DIRAC's older order ``(opType, paths)`` is accepted too.
        """
        return self.fileCatalogDB.hasAccess(paths, opType, self._caller())

    types_getPathPermissions = [LFNS]

    def export_getPathPermissions(self, lfns: Any) -> dict:
        """``{lfn: {'Read': bool, 'Write': bool, 'Execute': bool}}`` for the caller."""
        return self.fileCatalogDB.getPathPermissions(lfns, self._caller())

    types_isOK: list = []

    def export_isOK(self) -> dict:
        """S_OK when the service is connected to its database."""
        return self.fileCatalogDB.isConnected()

    types_getCatalogCounters: list = []

    def export_getCatalogCounters(self) -> dict:
        """S_OK({'Directories': n, 'Files': n, 'Replicas': n})."""
        return self.fileCatalogDB.getCatalogCounters()

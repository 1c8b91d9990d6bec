"""FileCatalogClient: the RPC client of the ``DataManagement/FileCatalog`` service.

``FileCatalogClient(url=None, **kwargs)``: ``url`` is a ``System/Service`` name
or https URL(s), default ``DataManagement/FileCatalog``. The other keywords go to
every RPC call: ``timeout``, ``proxyLocation``, ``useCertificates``, and
``delegatedDN`` / ``delegatedGroup`` for a trusted host (such as the S3 gateway)
acting on behalf of a user; the service then applies that user's permissions.

Every method takes one LFN, a list, or a dict ``{lfn: value}`` and returns
``S_OK({'Successful': ..., 'Failed': ...})`` or S_ERROR; it never raises.
"""

from __future__ import annotations

from typing import Any

from DIRAC.Core.Base.Client import Client
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Catalog.Utilities import LIST_PAGE, checkArgumentFormat, iterDirectoryPages

SERVICE = "DataManagement/FileCatalog"

READ_METHODS = [
    "hasAccess",
    "exists",
    "isFile",
    "isDirectory",
    "getFileMetadata",
    "getFileSize",
    "getReplicas",
    "listDirectory",
    "listDirectoryPage",
    "getDirectoryMetadata",
    "getPathPermissions",
]
WRITE_METHODS = [
    "addFile",
    "addReplica",
    "removeFile",
    "removeReplica",
    "createDirectory",
    "removeDirectory",
    "changePathOwner",
    "changePathGroup",
    "changePathMode",
]
NO_LFN_METHODS = ["isOK", "getCatalogCounters"]


def _chunks(lfns: list | dict, size: int) -> list[list | dict]:
    """``lfns`` (a list or a dict) cut in pieces of at most ``size`` LFNs."""
    keys = list(lfns)
    pieces = [keys[start : start + size] for start in range(0, len(keys), size)]
    return [piece if isinstance(lfns, list) else {key: lfns[key] for key in piece} for piece in pieces]


def _wireLFNs(lfns: Any) -> dict:
    """S_OK(the LFN argument in a JSON-friendly form: str, list or dict)."""
    if isinstance(lfns, (str, list, dict)):
        return {"OK": True, "Value": lfns}
    return checkArgumentFormat(lfns)


class FileCatalogClient(Client):
    """DIRAC's FileCatalogClient API over our HTTPS RPC."""

    READ_METHODS = READ_METHODS
    #: LFNs per RPC: a bulk call of 100,000 LFNs goes as 20 calls (the service refuses more than
    #: its MaxLFNsPerCall, 20,000 by default), each answered in bounded memory.
    CHUNK = 5000
    WRITE_METHODS = WRITE_METHODS
    NO_LFN_METHODS = NO_LFN_METHODS

    #: Writes the service makes idempotent (the same file or replica registered again succeeds),
    #: so the RPC client may send them to the next URL after a lost answer.
    IDEMPOTENT_WRITES = ("addFile", "addReplica")

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("LFNChecking", None)
        kwargs.setdefault("idempotentMethods", self.IDEMPOTENT_WRITES)
        super().__init__(**kwargs)
        self.setServer(url or SERVICE)
        self.delegatedDN = kwargs.get("delegatedDN")
        self.delegatedGroup = kwargs.get("delegatedGroup")

    # The facade's plug-in interface ------------------------------------------------

    def getInterfaceMethods(self) -> tuple[list[str], list[str], list[str]]:
        """(read methods, write methods, methods without an LFN argument)."""
        return list(READ_METHODS), list(WRITE_METHODS), list(NO_LFN_METHODS)

    def hasCatalogMethod(self, methodName: str) -> bool:
        """True when this catalog implements ``methodName``."""
        return methodName in READ_METHODS or methodName in WRITE_METHODS or methodName in NO_LFN_METHODS

    def _call(self, method: str, lfns: Any, *args: Any) -> dict:
        """``method`` on the LFNs, ``CHUNK`` LFNs per RPC; the answers merged into one bulk result.

        A chunk that fails as a whole (S_ERROR) puts its LFNs in Failed with the reason
        (other chunks may have been written); S_ERROR only when every chunk failed so.
        """
        wire = _wireLFNs(lfns)
        if not wire["OK"]:
            return wire
        value = wire["Value"]
        if isinstance(value, str) or len(value) <= self.CHUNK:
            return self._getRPC().executeRPC(method, value, *args)
        successful: dict = {}
        failed: dict = {}
        errors = []
        for chunk in _chunks(value, self.CHUNK):
            result = self._getRPC().executeRPC(method, chunk, *args)
            if not result["OK"]:
                errors.append(result)
                failed.update(dict.fromkeys(chunk, result["Message"]))
                continue
            successful.update(result["Value"].get("Successful", {}))
            failed.update(result["Value"].get("Failed", {}))
        if errors and not successful and len(failed) == len(value):
            return errors[0]
        return S_OK({"Successful": successful, "Failed": failed})

    # Reads -------------------------------------------------------------------------

    def hasAccess(self, paths: Any, opType: str) -> dict:
        """``{lfn: True/False}``: may the caller (or the delegated user) do ``opType`` on each path?"""
        if not isinstance(opType, str):
            return S_ERROR(DErrno.ETYPE, f"opType must be a string, got {type(opType).__name__}")
        return self._call("hasAccess", paths, opType)

    def exists(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{lfn: True/False}``."""
        return self._call("exists", lfns)

    def isFile(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{lfn: True/False}``."""
        return self._call("isFile", lfns)

    def isDirectory(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{lfn: True/False}``."""
        return self._call("isDirectory", lfns)

    def getFileMetadata(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{lfn: {Size, Checksum, ChecksumType, GUID, Owner, OwnerGroup, Mode, CreationDate, ...}}``."""
        return self._call("getFileMetadata", lfns)

    def getFileSize(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{lfn: size}``."""
        return self._call("getFileSize", lfns)

    def getReplicas(self, lfns: Any, allStatus: bool = False, **_kwargs: Any) -> dict:
        """``{lfn: {SE: PFN}}``."""
        return self._call("getReplicas", lfns, bool(allStatus))

    def listDirectory(self, lfns: Any, verbose: bool = False, **_kwargs: Any) -> dict:
        """``{path: {'Files': {lfn: {'MetaData': ...}}, 'SubDirs': {path: ...}, 'Links': {}, 'Datasets': {}}}``.

        Each directory is fetched page by page (``listDirectoryPage``), so the service's
        answers stay bounded whatever the size of the directory; the result is DIRAC's.
        To process a huge directory in bounded memory, iterate ``iterDirectoryPages``.
        """
        wire = checkArgumentFormat(lfns)
        if not wire["OK"]:
            return wire
        successful: dict = {}
        failed: dict = {}
        errors: list[dict] = []
        for path in wire["Value"]:
            whole: dict = {"Files": {}, "SubDirs": {}, "Links": {}, "Datasets": {}}
            for result in iterDirectoryPages(self.listDirectoryPage, path, verbose):
                if not result["OK"]:
                    errors.append(result)
                    failed[path] = result["Message"]
                    break
                if path not in result["Value"]["Successful"]:
                    failed[path] = result["Value"]["Failed"].get(path, f"no answer for {path}")
                    break
                page = result["Value"]["Successful"][path]
                for key in whole:
                    whole[key].update(page.get(key, {}))
            else:
                successful[path] = whole
        if errors and len(errors) == len(wire["Value"]):
            return errors[0]
        return S_OK({"Successful": successful, "Failed": failed})

    def listDirectoryPage(
        self, lfns: Any, verbose: bool = False, marker: str = "", limit: int = LIST_PAGE, **_kwargs: Any
    ) -> dict:
        """One page of one directory: ``{path: {'Files', 'SubDirs', 'Links', 'Datasets', 'Next': marker}}``."""
        return self._call("listDirectoryPage", lfns, bool(verbose), marker, limit)

    def getDirectoryMetadata(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{path: {Owner, OwnerGroup, Mode, CreationDate, ModificationDate, ...}}``."""
        return self._call("getDirectoryMetadata", lfns)

    def getPathPermissions(self, lfns: Any, **_kwargs: Any) -> dict:
        """``{lfn: {'Read': bool, 'Write': bool, 'Execute': bool}}``."""
        return self._call("getPathPermissions", lfns)

    # Writes ------------------------------------------------------------------------

    def addFile(self, lfns: Any, **_kwargs: Any) -> dict:
        """Register ``{lfn: {SE, Size, Checksum, ChecksumType?, GUID?, PFN?}}``."""
        return self._call("addFile", lfns)

    def addReplica(self, lfns: Any, **_kwargs: Any) -> dict:
        """Register replicas ``{lfn: {SE, PFN?}}``."""
        return self._call("addReplica", lfns)

    def removeFile(self, lfns: Any, **_kwargs: Any) -> dict:
        """Remove files (an unregistered LFN counts as removed)."""
        return self._call("removeFile", lfns)

    def removeReplica(self, lfns: Any, **_kwargs: Any) -> dict:
        """Remove replicas ``{lfn: {SE}}``."""
        return self._call("removeReplica", lfns)

    def createDirectory(self, lfns: Any, **_kwargs: Any) -> dict:
        """Create directories and their missing parents."""
        return self._call("createDirectory", lfns)

    def removeDirectory(self, lfns: Any, recursive: bool = False, **_kwargs: Any) -> dict:
        """Remove empty directories (``recursive`` is not supported: refused when True)."""
        if recursive:
            return S_ERROR(DErrno.EINVAL, "removeDirectory: recursive removal is not supported, remove files first")
        return self._call("removeDirectory", lfns)

    def changePathOwner(self, lfns: Any, recursive: bool = False, **_kwargs: Any) -> dict:
        """``{path: owner}`` (catalog managers only)."""
        return self._call("changePathOwner", lfns, bool(recursive))

    def changePathGroup(self, lfns: Any, recursive: bool = False, **_kwargs: Any) -> dict:
        """``{path: group}``."""
        return self._call("changePathGroup", lfns, bool(recursive))

    def changePathMode(self, lfns: Any, recursive: bool = False, **_kwargs: Any) -> dict:
        """``{path: mode}`` (int, e.g. 0o750)."""
        return self._call("changePathMode", lfns, bool(recursive))

    # Without LFNs ------------------------------------------------------------------

    def isOK(self, **_kwargs: Any) -> dict:
        """S_OK when the service answers and has its database."""
        return self._getRPC().executeRPC("isOK")

    def getCatalogCounters(self, **_kwargs: Any) -> dict:
        """S_OK({'Directories': n, 'Files': n, 'Replicas': n})."""
        return self._getRPC().executeRPC("getCatalogCounters")

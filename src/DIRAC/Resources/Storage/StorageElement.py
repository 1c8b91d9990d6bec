"""``StorageElement``: the LFN-level face of a storage element.

It checks that the SE allows the kind of operation (``ReadAccess``,
``WriteAccess``, ``RemoveAccess``, ``CheckAccess``) before touching anything,
turns LFNs into each plugin's URLs, tries the plugins in protocol-preference
order per LFN, and answers with LFNs as keys.
"""

from __future__ import annotations

from typing import Any

import DIRAC
from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.Helpers.Operations import Operations
from DIRAC.ConfigurationSystem.Client.Helpers.Resources import getSitesForSE
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Storage.CopyWays import copyByTheWays
from DIRAC.Resources.Storage.StorageFactory import StorageFactory
from DIRAC.Resources.Storage.StreamedCopy import checkCopyItems
from DIRAC.Resources.Storage.Utilities import bulkResult, checkArgumentFormat

DEFAULT_ACCESS_PROTOCOLS = ["s3", "file", "https", "http"]
DEFAULT_WRITE_PROTOCOLS = ["s3", "file"]
USABLE_STATUSES = ("Active", "Degraded")

READ, WRITE, REMOVE, CHECK = "Read", "Write", "Remove", "Check"
#: LFN methods and the access each needs
_METHOD_ACCESS = {
    "exists": CHECK,
    "isFile": CHECK,
    "getFileSize": CHECK,
    "getFileMetadata": CHECK,
    "isDirectory": CHECK,
    "getDirectoryMetadata": CHECK,
    "getDirectorySize": CHECK,
    "listDirectory": CHECK,
    "getFile": READ,
    "getDirectory": READ,
    "getTransportURL": READ,
    "createPresignedUrl": READ,
    "putFile": WRITE,
    "putDirectory": WRITE,
    "createDirectory": WRITE,
    "removeFile": REMOVE,
    "removeDirectory": REMOVE,
}


def _onlySections(info: dict, name: str, sections: list[str]) -> dict:
    """The factory's answer keeping only the plugins of these protocol sections (not same-named plugins)."""
    kept = [index for index, storage in enumerate(info["StorageObjects"]) if storage.protocolSectionName in sections]
    if not kept:
        return S_ERROR(DErrno.ECONF, f"storage element {name} has no plugin among {sections}")
    objects = [info["StorageObjects"][index] for index in kept]
    options = [info["ProtocolOptions"][index] for index in kept]
    isLocal = [str(option.get("Access", "remote")).lower() == "local" for option in options]
    local = [option["PluginName"] for option, here in zip(options, isLocal, strict=True) if here]
    remote = [option["PluginName"] for option, here in zip(options, isLocal, strict=True) if not here]
    return S_OK(
        {**info, "StorageObjects": objects, "ProtocolOptions": options, "LocalPlugins": local, "RemotePlugins": remote}
    )


class StorageElement:
    """DIRAC's ``StorageElement(name)``: bulk operations on LFNs of one SE."""

    def __init__(
        self,
        name: str,
        protocolSections: list[str] | str | None = None,
        vo: str | None = None,
        hideExceptions: bool = False,
        plugins: list[str] | str | None = None,
    ):
        """``protocolSections`` (DIRAC's) limits the SE to these protocol sections, ``plugins`` (ours) to
        these plugin or section names."""
        self.name = name
        self.vo = vo
        self.log = gLogger.getSubLogger(f"StorageElement/{name}")
        sections = [protocolSections] if isinstance(protocolSections, str) else protocolSections
        wanted = sections or ([plugins] if isinstance(plugins, str) else plugins)
        result = StorageFactory(vo=vo).getStorages(name, wanted or None, hideExceptions)
        if result["OK"] and sections:
            result = _onlySections(result["Value"], name, sections)
        self.valid = result["OK"]
        self.errorReason = "" if result["OK"] else result["Message"]
        self.storages: list = []
        self.options: dict = {}
        self.localPlugins: list[str] = []
        self.protocolSections: list[str] = []
        self.localProtocolSections: list[str] = []
        if result["OK"]:
            info = result["Value"]
            self.storages = info["StorageObjects"]
            self.options = info["StorageOptions"]
            self.localPlugins = info["LocalPlugins"]
            self.protocolSections = [storage.protocolSectionName for storage in self.storages]
            self.localProtocolSections = [
                storage.protocolSectionName
                for storage, options in zip(self.storages, info["ProtocolOptions"], strict=True)
                if str(options.get("Access", "remote")).lower() == "local"
            ]
            for storage in self.storages:
                storage.setStorageElement(self)

    # ------------------------------------------------------------------ status

    def _accessStatus(self, access: str) -> str:
        return str(self.options.get(f"{access}Access", "Active"))

    def getStatus(self) -> dict:
        """S_OK({'Read', 'Write', 'Remove', 'Check', 'DiskSE', 'TapeSE'}) from the SE's access options."""
        if not self.valid:
            return S_ERROR(DErrno.ECONF, self.errorReason)
        status = {access: self._accessStatus(access) in USABLE_STATUSES for access in (READ, WRITE, REMOVE, CHECK)}
        return S_OK({**status, "DiskSE": True, "TapeSE": False})

    def isValid(self, operation: str = "") -> dict:
        """S_OK() when the SE is defined and allows ``operation`` (a method name or Read/Write/...)."""
        if not self.valid:
            return S_ERROR(DErrno.ECONF, self.errorReason)
        access = _METHOD_ACCESS.get(operation, operation if operation in (READ, WRITE, REMOVE, CHECK) else "")
        if not access:
            return S_OK()
        status = self._accessStatus(access)
        if access == CHECK and status not in USABLE_STATUSES and self._accessStatus(READ) in USABLE_STATUSES:
            status = self._accessStatus(READ)
        if status not in USABLE_STATUSES:
            return S_ERROR(
                DErrno.ESENOTALLOWED,
                f"SE {self.name} is banned for {access.lower()} ({access}Access = {status}); nothing was done",
            )
        return S_OK()

    def getStorageParameters(self, plugin: str | None = None, protocol: str | None = None) -> dict:
        """S_OK(parameters of the first plugin matching ``plugin`` / ``protocol``), without secrets."""
        for storage in self.storages:
            if plugin in (None, storage.pluginName) and protocol in (None, storage.protocolName):
                return S_OK(storage.getParameters())
        return S_ERROR(DErrno.ENOPLUGIN, f"SE {self.name} has no plugin {plugin or ''} {protocol or ''}".strip())

    def getProtocolSections(self) -> dict:
        """S_OK(names of the protocol sections in use), local-access sections first (as DIRAC)."""
        if not self.valid:
            return S_ERROR(DErrno.ECONF, self.errorReason)
        return S_OK(
            self.localProtocolSections + [s for s in self.protocolSections if s not in self.localProtocolSections]
        )

    def getPlugins(self) -> dict:
        """S_OK(plugin names of this SE)."""
        return S_OK([storage.pluginName for storage in self.storages])

    def isLocalSE(self) -> dict:
        """S_OK(True) when the SE is at the site this code runs at."""
        return S_OK(DIRAC.siteName() in getSitesForSE(self.name).get("Value", []))

    def _protocolPreference(self, access: str) -> list[str]:
        option = "WriteProtocols" if access in (WRITE, REMOVE) else "AccessProtocols"
        default = DEFAULT_WRITE_PROTOCOLS if option == "WriteProtocols" else DEFAULT_ACCESS_PROTOCOLS
        fromOperations = Operations(vo=self.vo).getValue(f"DataManagement/{option}", default)
        return gConfig.getValue(f"/Resources/StorageElements/{self.name}/{option}", fromOperations)

    def _storagesFor(self, access: str) -> list:
        """Plugins usable for ``access``, in preference order; local-only plugins only at the local site."""
        isLocal = self.isLocalSE()["Value"] if self.localProtocolSections else False
        candidates = [s for s in self.storages if isLocal or s.protocolSectionName not in self.localProtocolSections]
        preference = self._protocolPreference(access)
        ranked = [s for protocol in preference for s in candidates if s.protocolName == protocol]
        return ranked

    def negociateProtocolWithOtherSE(self, sourceSE: StorageElement, protocols: list[str] | None = None) -> dict:
        """S_OK(protocols a source SE can give out and this SE can read, optionally within ``protocols``)."""
        theirs = [p for storage in sourceSE.storages for p in storage.outputProtocols]
        ours = [p for storage in self.storages for p in storage.inputProtocols]
        common = [p for p in dict.fromkeys(theirs) if p in ours and (protocols is None or p in protocols)]
        return S_OK(common)

    @property
    def inputProtocols(self) -> list[str]:
        return list(dict.fromkeys(p for storage in self.storages for p in storage.inputProtocols))

    @property
    def outputProtocols(self) -> list[str]:
        return list(dict.fromkeys(p for storage in self.storages for p in storage.outputProtocols))

    # ------------------------------------------------------------------ execution

    def __getattr__(self, name: str):
        if name in _METHOD_ACCESS:
            return lambda lfn, *args, **kwargs: self._execute(name, lfn, *args, **kwargs)
        raise AttributeError(f"StorageElement has no method {name}")

    def _execute(self, method: str, lfn: Any, *args: Any, **kwargs: Any) -> dict:
        """Run a plugin ``method`` for LFNs, trying plugins in order for the LFNs still failing."""
        allowed = self.isValid(method)
        if not allowed["OK"]:
            return allowed
        parsed = checkArgumentFormat(lfn)
        if not parsed["OK"]:
            return parsed
        pending, failed, successful = {}, {}, {}
        for name, value in parsed["Value"].items():
            checked = checkLFN(name)
            if checked["OK"]:
                pending[name] = value
            else:
                failed[name] = checked["Message"]
        storages = self._storagesFor(_METHOD_ACCESS[method])
        if not storages and pending:
            preference = self._protocolPreference(_METHOD_ACCESS[method])
            return S_ERROR(DErrno.EPROTONOSUPPORT, f"SE {self.name} has no plugin for {method} among {preference}")
        for storage in storages:
            if not pending:
                break
            urls = {storage.constructURLFromLFN(name)["Value"]: name for name in pending}
            result = getattr(storage, method)({url: pending[name] for url, name in urls.items()}, *args, **kwargs)
            if not result["OK"]:
                failed.update(dict.fromkeys(pending, f"{storage.pluginName}: {result['Message']}"))
                continue
            for url, value in result["Value"]["Successful"].items():
                name = urls[url]
                successful[name] = self._urlsToLFNs(storage, value) if method == "listDirectory" else value
                pending.pop(name, None)
                failed.pop(name, None)
            for url, message in result["Value"]["Failed"].items():
                failed[urls[url]] = message
        return bulkResult(successful, failed)

    @staticmethod
    def _urlsToLFNs(storage, listing: dict) -> dict:
        """A plugin's listing keyed by LFNs instead of URLs."""

        def toLFN(url: str) -> str:
            result = storage._urlToLFN(url)
            return result["Value"] if result["OK"] else url

        return {section: {toLFN(url): meta for url, meta in entries.items()} for section, entries in listing.items()}

    # ------------------------------------------------------------------ copies from another SE

    def copyFromSEPerFile(self, sourceSE: StorageElement, items: Any) -> dict:
        """S_OK({lfn: S_OK({'Size', 'Way'}) | S_ERROR}): copy ``items`` from ``sourceSE`` into this SE.

        ``items`` is ``{lfn: {'Size': int, 'Checksum': 'adler32 hex'}}`` (the
        catalog's values); a file is copied only when the destination then holds
        exactly those bytes. Per file, a server-side copy when the plugins can,
        else a streamed copy (``CopyWays``). An error with ``DErrno.EPROTONOSUPPORT``
        means no direct way can copy that file and nothing was left here; any
        other error is a real failure, already cleaned up. The source must allow
        Read, this SE Write; else the whole call fails and nothing is done.
        """
        if not isinstance(sourceSE, StorageElement):
            return S_ERROR(DErrno.ETYPE, f"sourceSE must be a StorageElement, got {type(sourceSE).__name__}")
        for se, access in ((sourceSE, READ), (self, WRITE)):
            allowed = se.isValid(access)
            if not allowed["OK"]:
                return allowed
        if sourceSE.name == self.name:
            return S_ERROR(DErrno.EINVAL, f"the source and the destination are both {self.name}: nothing to copy")
        if not isinstance(items, dict):
            return S_ERROR(DErrno.ETYPE, f"items must be {{lfn: {{'Size', 'Checksum'}}}}, got {type(items).__name__}")
        valid, results = checkCopyItems(items)
        if valid:
            expected = {lfn: {"Size": size, "Checksum": checksum} for lfn, (size, checksum) in valid.items()}
            results.update(copyByTheWays(self._storagesFor(WRITE), sourceSE._storagesFor(READ), expected))
        return S_OK(results)

    def copyFromSE(self, sourceSE: StorageElement, items: Any) -> dict:
        """Bulk ``copyFromSEPerFile``: S_OK({'Successful': {lfn: {'Size', 'Way'}}, 'Failed': {lfn: reason}})."""
        result = self.copyFromSEPerFile(sourceSE, items)
        if not result["OK"]:
            return result
        successful = {lfn: answer["Value"] for lfn, answer in result["Value"].items() if answer["OK"]}
        failed = {lfn: answer["Message"] for lfn, answer in result["Value"].items() if not answer["OK"]}
        return bulkResult(successful, failed)

    def replicateFile(self, lfn: Any, sourceSize: int = 0, sourceSE: StorageElement | str | None = None) -> dict:
        """DIRAC's ``replicateFile``: copy file(s) into this SE from their replica at ``sourceSE``.

        ``lfn`` is an LFN, a list, or DIRAC's ``{lfn: sourceURL}``; a replica keeps
        its LFN, so a given URL must be ``sourceSE``'s URL of that same LFN. There
        is no third-party copy from a bare URL (S3 cannot pull one): ``sourceSE``
        is required. The expected size and adler32 are the source's own; a
        ``sourceSize`` (DIRAC's) other than 0 must match. Successful: ``{lfn: size}``
        as DIRAC's ``putFile``; ``copyFromSE`` also tells the way.
        """
        if sourceSE is None:
            return S_ERROR(
                DErrno.EPROTONOSUPPORT,
                f"SE {self.name}: replicateFile needs sourceSE; no third-party copy from a URL (S3 cannot pull one)",
            )
        if not isinstance(sourceSE, (str, StorageElement)):
            return S_ERROR(DErrno.ETYPE, f"sourceSE must be an SE name or a StorageElement, got {sourceSE!r}")
        source = StorageElement(sourceSE, vo=self.vo) if isinstance(sourceSE, str) else sourceSE
        parsed = checkArgumentFormat(lfn)
        if not parsed["OK"]:
            return parsed
        failed: dict[str, str] = {}
        names = []
        for name, url in parsed["Value"].items():
            if url and url != name and not self._namesLFN(source, url, name):
                failed[name] = f"{url} is not the replica of {name} at {source.name}: a replica keeps its LFN"
            else:
                names.append(name)
        if not names:
            return bulkResult({}, failed)
        metadata = source.getFileMetadata(names)
        if not metadata["OK"]:
            return metadata
        failed.update({name: f"source {source.name}: {reason}" for name, reason in metadata["Value"]["Failed"].items()})
        items = {}
        for name, meta in metadata["Value"]["Successful"].items():
            if sourceSize and meta.get("Size") != sourceSize:
                failed[name] = f"{source.name} holds {meta.get('Size')} bytes of {name}, not sourceSize {sourceSize}"
            else:
                items[name] = {"Size": meta.get("Size"), "Checksum": meta.get("Checksum")}
        copied = self.copyFromSE(source, items) if items else bulkResult()
        if not copied["OK"]:
            return copied
        failed.update(copied["Value"]["Failed"])
        return bulkResult({name: value["Size"] for name, value in copied["Value"]["Successful"].items()}, failed)

    @staticmethod
    def _namesLFN(source: StorageElement, url: str, lfn: str) -> bool:
        """True when one of ``source``'s plugins reads ``url`` as ``lfn``."""
        for storage in source.storages:
            mapped = storage._urlToLFN(url)
            if mapped["OK"] and mapped["Value"] == lfn:
                return True
        return False

    # ------------------------------------------------------------------ URLs

    def getURL(self, lfn: Any, protocol: str | list[str] | bool = False) -> dict:
        """Bulk: a URL for each LFN in ``protocol`` (a name or a preference list); native when not given."""
        wanted = [protocol] if isinstance(protocol, str) else list(protocol or [])
        allowed = self.isValid(READ)
        if not allowed["OK"]:
            return allowed
        for storage in self._storagesFor(READ):
            offered = [p for p in wanted if p in storage.outputProtocols] if wanted else [storage.protocolName]
            if offered:
                return self._execute("getTransportURL", lfn, offered)
        return S_ERROR(DErrno.EPROTONOSUPPORT, f"SE {self.name} offers none of the protocols {wanted}")

    def getOccupancy(self, unit: str = "MB", **kwargs: Any) -> dict:
        """S_OK(occupancy) from the first plugin that can tell."""
        if not self.valid:
            return S_ERROR(DErrno.ECONF, self.errorReason)
        last = S_ERROR(DErrno.EPROTONOSUPPORT, f"SE {self.name} has no plugin")
        for storage in self.storages:
            last = storage.getOccupancy(unit=unit, **kwargs)
            if last["OK"]:
                return last
        return last

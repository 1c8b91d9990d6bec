"""FileCatalog: one object dispatching DIRAC's catalog calls to the configured catalogs.

Catalogs are the sections of ``/Resources/FileCatalogs`` (or those listed by
Operations ``/Services/Catalogs/CatalogList``, or the sections of Operations
``/Services/Catalogs``), each with the options ``CatalogType`` (plug-in,
default: the section name), ``CatalogURL`` (service name or URL), ``AccessType``
(``Read``, ``Write`` or ``Read-Write``; default ``Read-Write``), ``Master``
(``True`` for at most one catalog) and ``Status`` (``Active`` by default; other
values leave the catalog out). Operations ``/Services/Catalogs/<name>`` options
override ``/Resources``. With nothing configured, the one catalog ``FileCatalog``
(service ``DataManagement/FileCatalog``) is used.

* Write methods go to every write catalog, the master first. When the master
  returns S_ERROR the call fails and no other catalog is called; LFNs the master
  fails are not sent to the others. Results are DIRAC's
  ``{'Successful': {lfn: {catalog: value}}, 'Failed': {lfn: {catalog: reason}}}``.
* Read methods ask the read catalogs in turn (master first) until every LFN has
  an answer; results are ``{'Successful': {lfn: value}, 'Failed': {lfn: reason}}``.
* The LFN argument may be one LFN (str), a list, or a dict ``{lfn: value}``.

Extra keyword arguments of the constructor (``delegatedDN``, ``delegatedGroup``,
``useCertificates``, ``proxyLocation``, ``timeout``) are handed to every
catalog client, so a trusted service can act through the facade for a user.
"""

from __future__ import annotations

import functools
from typing import Any

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.Helpers.Operations import Operations
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Catalog.FileCatalogFactory import FileCatalogFactory
from DIRAC.Resources.Catalog.Utilities import checkArgumentFormat

ROOT_CONFIG_PATH = "/Resources/FileCatalogs"
DEFAULT_CATALOG = "FileCatalog"
_TRUE_WORDS = {"true", "yes", "y", "1"}


def _proxyVO() -> str:
    """The VO of the group of the current proxy, '' when there is none."""
    try:
        from DIRAC.ConfigurationSystem.Client.Helpers.Registry import getVOForGroup
        from DIRAC.Core.Security.ProxyInfo import getProxyInfo
    except ImportError:
        return ""
    result = getProxyInfo()
    group = result["Value"].get("group") if result["OK"] and isinstance(result["Value"], dict) else None
    return getVOForGroup(group) if group else ""


class FileCatalog:
    """DIRAC's ``FileCatalog`` facade; see the module documentation."""

    def __init__(self, catalogs: str | list[str] | None = None, vo: str | None = None, **clientKwargs: Any) -> None:
        self.valid = True
        self.errorMessage = ""
        self.timeout = 180
        self.rootConfigPath = ROOT_CONFIG_PATH
        self.readCatalogs: list[tuple[str, Any, bool]] = []
        self.writeCatalogs: list[tuple[str, Any, bool]] = []
        self.ro_methods: set[str] = set()
        self.write_methods: set[str] = set()
        self.no_lfn_methods: set[str] = set()
        self.log = gLogger.getSubLogger("FileCatalog")
        self.vo = vo if vo else _proxyVO()
        self.opHelper = Operations(vo=self.vo)
        self._clientKwargs = clientKwargs

        wanted = [catalogs] if isinstance(catalogs, str) else list(catalogs or [])
        result = self._loadCatalogs(wanted)
        if result["OK"] and not (self.readCatalogs or self.writeCatalogs):
            result = S_ERROR(DErrno.ECONF, "no active file catalog is configured")
        if result["OK"] and len(self.getMasterCatalogNames()["Value"]) > 1:
            result = S_ERROR(DErrno.ECONF, f"more than one master catalog: {self.getMasterCatalogNames()['Value']}")
        if not result["OK"]:
            self.valid = False
            self.errorMessage = result["Message"]
            self.log.error("FileCatalog is not usable", self.errorMessage)
        self._collectMethods()

    # Configuration ---------------------------------------------------------------

    def isOK(self) -> bool:
        """True when at least one catalog was set up without configuration errors."""
        return self.valid

    def getReadCatalogs(self) -> list[tuple[str, Any, bool]]:
        """[(name, catalog object, master)] in the order reads try them."""
        return self.readCatalogs

    def getWriteCatalogs(self) -> list[tuple[str, Any, bool]]:
        """[(name, catalog object, master)], the master first."""
        return self.writeCatalogs

    def getMasterCatalogNames(self) -> dict:
        """S_OK(names of the master catalogs)."""
        return S_OK([name for name, _catalog, master in self.writeCatalogs if master])

    def _eligibleCatalogs(self) -> list[str]:
        names = self.opHelper.getValue("/Services/Catalogs/CatalogList", [])
        if names:
            return names
        result = self.opHelper.getSections("/Services/Catalogs")
        if result["OK"] and result["Value"]:
            return result["Value"]
        result = gConfig.getSections(self.rootConfigPath)
        return result["Value"] if result["OK"] else []

    def _catalogConfig(self, name: str) -> dict:
        config: dict[str, str] = {}
        result = gConfig.getOptionsDict(f"{self.rootConfigPath}/{name}")
        if result["OK"]:
            config.update(result["Value"])
        result = self.opHelper.getOptionsDict(f"/Services/Catalogs/{name}")
        if result["OK"]:
            config.update(result["Value"])
        config.setdefault("Status", "Active")
        config.setdefault("AccessType", "Read-Write")
        config["Master"] = str(config.get("Master", "")).strip().lower() in _TRUE_WORDS
        return config

    def _loadCatalogs(self, wanted: list[str]) -> dict:
        eligible = self._eligibleCatalogs()
        if wanted:
            unknown = [name for name in wanted if name not in eligible and name != DEFAULT_CATALOG]
            if unknown:
                return S_ERROR(DErrno.ECONF, f"catalog(s) not configured: {', '.join(unknown)}")
            names, activeOnly = wanted, False
        else:
            names, activeOnly = eligible or [DEFAULT_CATALOG], True
        for name in names:
            config = self._catalogConfig(name) if name in eligible else {"Master": True, "AccessType": "Read-Write"}
            if activeOnly and config.get("Status", "Active") != "Active":
                continue
            result = self.addCatalog(name, config.get("AccessType", "Read-Write"), config["Master"], config)
            if not result["OK"]:
                return result
        return S_OK()

    def addCatalog(
        self, catalogName: str, mode: str = "Write", master: bool = False, config: dict | None = None
    ) -> dict:
        """Add a catalog object for ``catalogName``; ``mode`` contains Read and/or Write."""
        result = FileCatalogFactory().createCatalog(catalogName, config or {}, **self._clientKwargs)
        if not result["OK"]:
            return result
        entry = (catalogName, result["Value"], master)
        for kind, catalogList in (("read", self.readCatalogs), ("write", self.writeCatalogs)):
            if kind not in mode.lower():
                continue
            if master:
                catalogList.insert(0, entry)
            else:
                catalogList.append(entry)
        self._collectMethods()
        return S_OK()

    def removeCatalog(self, catalogName: str) -> dict:
        """Forget the catalog called ``catalogName``."""
        self.readCatalogs = [entry for entry in self.readCatalogs if entry[0] != catalogName]
        self.writeCatalogs = [entry for entry in self.writeCatalogs if entry[0] != catalogName]
        self._collectMethods()
        return S_OK()

    def _collectMethods(self) -> None:
        self.ro_methods, self.write_methods, self.no_lfn_methods = set(), set(), set()
        masters = [entry for entry in self.writeCatalogs if entry[2]]
        for _name, catalog, _master in masters or self.writeCatalogs:
            _read, write, noLfn = catalog.getInterfaceMethods()
            self.write_methods.update(write)
            self.no_lfn_methods.update(noLfn)
        for _name, catalog, _master in self.readCatalogs:
            read, _write, noLfn = catalog.getInterfaceMethods()
            self.ro_methods.update(read)
            self.no_lfn_methods.update(noLfn)
            self.ro_methods.update(noLfn)

    # Dispatch ---------------------------------------------------------------------

    def __getattr__(self, name: str):
        # Called only for names that are not attributes: catalog methods.
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self.__dict__.get("write_methods", ()):
            return functools.partial(self._writeExecute, name)
        if name in self.__dict__.get("ro_methods", ()):
            return functools.partial(self._readExecute, name)
        raise AttributeError(f"FileCatalog has no method {name}")

    def hasAccess(self, paths: Any, opType: str) -> dict:
        """``{'Successful': {lfn: True/False}, 'Failed': {...}}``: may the caller do ``opType`` on each path?"""
        return self._readExecute("hasAccess", paths, opType)

    def _notUsable(self) -> dict | None:
        if not self.valid:
            return S_ERROR(DErrno.ECONF, f"FileCatalog is not usable: {self.errorMessage}")
        return None

    @staticmethod
    def _lfnArgument(method: str, parms: tuple) -> dict:
        """S_OK({lfn: value}, a new dict) from the first positional argument of ``method``."""
        if not parms:
            return S_ERROR(DErrno.EINVAL, f"{method}: the LFN argument is missing")
        result = checkArgumentFormat(parms[0])
        return S_OK(dict(result["Value"])) if result["OK"] else result

    def _writeExecute(self, method: str, *parms: Any, **kws: Any) -> dict:
        """Call ``method`` on every write catalog, master first; see the module documentation."""
        problem = self._notUsable()
        if problem:
            return problem
        if method in self.no_lfn_methods:
            catalogs = [entry for entry in self.writeCatalogs if entry[1].hasCatalogMethod(method)]
            return getattr(catalogs[0][1], method)(*parms, **kws) if catalogs else self._noCatalog(method)
        result = self._lfnArgument(method, parms)
        if not result["OK"]:
            return result
        pending = result["Value"]
        successful: dict[str, dict] = {}
        failed: dict[str, dict] = {}
        called = False
        for name, catalog, master in self.writeCatalogs:
            if not catalog.hasCatalogMethod(method) or not pending:
                continue
            called = True
            result = getattr(catalog, method)(dict(pending), *parms[1:], **kws)
            if not result["OK"]:
                if master:
                    self.log.error(f"{method} failed on the master catalog {name}", result["Message"])
                    return result
                for lfn in pending:
                    failed.setdefault(lfn, {})[name] = result["Message"]
                continue
            for lfn, reason in result["Value"].get("Failed", {}).items():
                failed.setdefault(lfn, {})[name] = reason
                if master:
                    pending.pop(lfn, None)
            for lfn, value in result["Value"].get("Successful", {}).items():
                successful.setdefault(lfn, {})[name] = value
        if not called:
            return self._noCatalog(method)
        return S_OK({"Successful": successful, "Failed": failed})

    def _readExecute(self, method: str, *parms: Any, **kws: Any) -> dict:
        """Ask the read catalogs in turn until every LFN has an answer."""
        problem = self._notUsable()
        if problem:
            return problem
        catalogs = [entry for entry in self.readCatalogs if entry[1].hasCatalogMethod(method)]
        if method in self.no_lfn_methods:
            lastError = None
            for _name, catalog, _master in catalogs:
                result = getattr(catalog, method)(*parms, **kws)
                if result["OK"]:
                    return result
                lastError = result
            return lastError or self._noCatalog(method)
        result = self._lfnArgument(method, parms)
        if not result["OK"]:
            return result
        pending = result["Value"]
        successful: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        lastError = None
        answered = False
        for _name, catalog, _master in catalogs:
            if not pending:
                break
            result = getattr(catalog, method)(dict(pending), *parms[1:], **kws)
            if not result["OK"]:
                lastError = result
                continue
            value = result["Value"]
            if not isinstance(value, dict) or "Successful" not in value:
                return result
            answered = True
            for lfn, item in value["Successful"].items():
                successful.setdefault(lfn, item)
                failed.pop(lfn, None)
                pending.pop(lfn, None)
            for lfn, item in value.get("Failed", {}).items():
                if lfn not in successful:
                    failed[lfn] = item
        if not answered:
            return lastError or self._noCatalog(method)
        return S_OK({"Successful": successful, "Failed": failed})

    @staticmethod
    def _noCatalog(method: str) -> dict:
        return S_ERROR(DErrno.ENOMETH, f"Failed to perform {method} from any catalog")

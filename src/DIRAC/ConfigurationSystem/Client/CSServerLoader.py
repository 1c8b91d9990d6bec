"""The central configuration from the configuration servers (``Configuration/Server``).

A central loader for ``gConfigurationData``: when the local configuration sets
``/DIRAC/Configuration/Servers`` (comma list of https URLs, fail-over), the central
configuration is fetched at start, kept in memory and refreshed by a background
daemon thread every ``/DIRAC/Configuration/RefreshTime`` seconds (default 300).
Only a changed version is transferred. ``ConfigurationData`` merges the local
configuration over it, so local options still win. Each version loaded is kept
on disk for this user (``ConfigurationCache``); when no server answers at start,
that copy is used with a warning, so commands and services still start.

When ``/DIRAC/Configuration/CentralFile`` is set (the configuration server's own
host), that file is the central configuration, as without this module. With
neither option, there is no central configuration.

Install it with ``installCentralLoader()`` (idempotent). The RPC client is imported
only when a server is actually contacted, so importing this module is cheap.
"""

from __future__ import annotations

import threading
import time

from diraccfg import CFG

from DIRAC.ConfigurationSystem.Client.ConfigurationCache import cachePath, loadCache, saveCache
from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    CENTRAL_FILE_OPTION,
    ConfigurationData,
    centralFileLoader,
    gConfigurationData,
)
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger

SERVERS_OPTION = "/DIRAC/Configuration/Servers"
REFRESH_OPTION = "/DIRAC/Configuration/RefreshTime"
DEFAULT_REFRESH = 300
FETCH_TIMEOUT = 30
_log = gLogger.getSubLogger("CSServerLoader")


def _option(cfg: CFG, path: str, default: str = "") -> str:
    return str(cfg.getOption(path.strip("/"), default) or default).strip()


def _useHostCertificate(localCFG: CFG) -> bool:
    """Host certificate when configured so, or when there is no proxy but a host certificate."""
    if _option(localCFG, "/DIRAC/Security/UseServerCertificate").lower() in ("yes", "true", "1", "y", "on"):
        return True
    from DIRAC.Core.Security import Locations

    return not Locations.getProxyLocation() and bool(Locations.getHostCertificateAndKeyLocation())


class CSServerLoader:
    """Callable central loader: ``loader(localCFG) -> S_OK(CFG)``; see the module documentation."""

    def __init__(self, data: ConfigurationData = gConfigurationData) -> None:
        self._data = data
        self._lock = threading.Lock()
        self._cfg: CFG | None = None
        self._version = ""
        self._fetchedAt = 0.0
        self._servers = ""
        self._refreshTime = DEFAULT_REFRESH
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def version(self) -> str:
        """The version of the central configuration held ("" before the first fetch)."""
        return self._version

    def __call__(self, localCFG: CFG) -> dict:
        if _option(localCFG, CENTRAL_FILE_OPTION):
            return centralFileLoader(localCFG)
        servers = _option(localCFG, SERVERS_OPTION)
        if not servers:
            return S_OK(CFG())
        try:
            refresh = max(1, int(_option(localCFG, REFRESH_OPTION, str(DEFAULT_REFRESH))))
        except ValueError:
            refresh = DEFAULT_REFRESH
        with self._lock:
            if servers != self._servers:  # another set of servers: what we hold is not theirs
                self._cfg, self._version, self._fetchedAt = None, "", 0.0
            self._servers, self._refreshTime = servers, refresh
            fresh = self._cfg is not None and time.monotonic() - self._fetchedAt < refresh
        result = S_OK(self._cfg) if fresh else self.fetch(localCFG)
        self._startRefresher()
        return result

    def fetch(self, localCFG: CFG | None = None) -> dict:
        """Ask the servers for a newer configuration now; S_OK(CFG held) or S_ERROR when none answered."""
        from DIRAC.ConfigurationSystem.Service.CentralStore import decompress, parseCFG
        from DIRAC.Core.Tornado.Client.TornadoClient import TornadoClient

        localCFG = localCFG if localCFG is not None else self._data.localCFG
        servers = self._servers or _option(localCFG, SERVERS_OPTION)
        client = TornadoClient(
            servers,
            timeout=FETCH_TIMEOUT,
            useCertificates=_useHostCertificate(localCFG),
            rpcProtocol=_option(localCFG, "/DIRAC/RPCProtocol", "json"),  # "dirac9" for DIRAC 9 servers
        )
        answer = client.executeRPC("getCompressedDataIfNewer", self._version)
        cacheFile = cachePath(localCFG, servers)
        if not answer["OK"]:
            if self._cfg is not None:
                _log.warn("Keeping the cached central configuration", answer["Message"])
                return S_OK(self._cfg)
            return self._fromDisk(cacheFile, servers, answer["Message"])
        value = answer["Value"] if isinstance(answer["Value"], dict) else {}
        if "data" in value:
            text = decompress(value["data"])
            parsed = parseCFG(text["Value"]) if text["OK"] else text
            if not parsed["OK"]:
                return S_ERROR(DErrno.ECONF, f"bad central configuration from {servers}: {parsed['Message']}")
            with self._lock:
                self._cfg = parsed["Value"]
                self._version = str(value.get("newestVersion", ""))
            _log.info("Central configuration loaded", f"version {self._version} from {servers}")
            saved = saveCache(cacheFile, servers, self._version, text["Value"])
            if not saved["OK"]:
                _log.warn("Central configuration not kept on disk", saved["Message"])
        with self._lock:
            self._fetchedAt = time.monotonic()
        return S_OK(self._cfg if self._cfg is not None else CFG())

    def _fromDisk(self, cacheFile: str, servers: str, problem: str) -> dict:
        """S_OK(CFG) of the last central configuration kept on disk, with a warning; S_ERROR when none."""
        cached = loadCache(cacheFile, servers)
        if not cached["OK"]:
            return S_ERROR(
                DErrno.ECONF,
                f"cannot load the central configuration from {servers}: {problem} (and {cached['Message']})",
            )
        cfg, version, saved = cached["Value"]
        with self._lock:
            self._cfg, self._version = cfg, version
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(saved))
        # NOTICE, not WARN: shown at the default level, the user must know the configuration may be old.
        _log.notice(
            "No configuration server answered: using the central configuration kept on disk",
            f"version {version} saved {when} in {cacheFile} ({problem})",
        )
        return S_OK(cfg)

    def refreshNow(self) -> dict:
        """Fetch outside the configuration lock, then let ``ConfigurationData`` take the new copy."""
        before = self._version
        result = self.fetch()
        if result["OK"] and self._version != before:
            return self._data.refreshCentral()
        return result

    def _startRefresher(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._refreshLoop, name="CSRefresher", daemon=True)
            self._thread.start()

    def _refreshLoop(self) -> None:
        while not self._stop.wait(self._refreshTime):
            try:
                result = self.refreshNow()
            except Exception:  # noqa: BLE001 - the refresher must survive any surprise
                _log.exception("Central configuration refresh failed")
                continue
            if not result["OK"]:
                _log.warn("Central configuration refresh failed", result["Message"])

    def stop(self) -> None:
        """Stop the background refresher."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)


_installed: CSServerLoader | None = None
_installLock = threading.Lock()


def installCentralLoader(data: ConfigurationData = gConfigurationData) -> CSServerLoader:
    """Make ``data`` load its central configuration through ``CSServerLoader`` (once); returns the loader."""
    global _installed
    with _installLock:
        if _installed is None or _installed._data is not data:
            _installed = CSServerLoader(data)
        data.setCentralLoader(_installed)
        return _installed

"""Where the configuration comes from: local cfg files merged over the central one.

The local files are ``DIRACSYSCONFIG`` (a comma list) or ``$DIRAC/etc/dirac.cfg``.
The central configuration is supplied by a loader (a cfg file named at
``/DIRAC/Configuration/CentralFile`` by default; a network loader can be plugged
in with ``setCentralLoader``). Local options always win, so a server can keep
secrets such as S3 keys in its own ``dirac.cfg`` while the rest lives centrally.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from diraccfg import CFG

from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

CENTRAL_FILE_OPTION = "/DIRAC/Configuration/CentralFile"


def localConfigFiles() -> list[str]:
    """The local cfg files to read, in order (later ones win)."""
    fromEnv = os.environ.get("DIRACSYSCONFIG", "")
    if fromEnv.strip():
        return [path.strip() for path in fromEnv.split(",") if path.strip()]
    root = os.environ.get("DIRAC", os.getcwd())
    return [os.path.join(root, "etc", "dirac.cfg")]


def loadCFGFile(path: str) -> dict:
    """S_OK(CFG) for a readable cfg file, S_ERROR naming the file and the cause otherwise."""
    if not os.path.isfile(path):
        return S_ERROR(f"Cannot read configuration file {path}: no such file")
    try:
        return S_OK(CFG().loadFromFile(path))
    except Exception as exc:  # noqa: BLE001 - diraccfg raises plain exceptions on syntax errors
        return S_ERROR(f"Cannot parse configuration file {path}: {exc}")


def centralFileLoader(localCFG: CFG) -> dict:
    """The default central source: the cfg file named at ``/DIRAC/Configuration/CentralFile``."""
    path = localCFG.getOption(CENTRAL_FILE_OPTION, "")
    if not path:
        return S_OK(CFG())
    return loadCFGFile(path)


def cfgWithOption(optionPath: str, value: str) -> CFG:
    """A CFG holding just ``optionPath = value`` (sections created as needed)."""
    *sections, option = [part for part in optionPath.split("/") if part]
    tree: dict = {option: value}
    for section in reversed(sections):
        tree = {section: tree}
    return CFG().loadFromDict(tree)


class ConfigurationData:
    """Holds the local and central CFG and the merged view; thread safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._centralLoader: Callable[[CFG], dict] = centralFileLoader
        self.reset()

    def reset(self) -> None:
        """Forget everything, options merged at run time included; the next access reloads the files."""
        with self._lock:
            self.localCFG = CFG()
            self.centralCFG = CFG()
            self._overrides = CFG()
            self._merged: CFG | None = None
            self.loaded = False
            self.loadErrors: list[str] = []

    def setCentralLoader(self, loader: Callable[[CFG], dict]) -> None:
        """Use ``loader(localCFG) -> S_OK(CFG)`` as the central configuration source."""
        with self._lock:
            self._centralLoader = loader

    def ensureLoaded(self) -> None:
        """Load local files and the central configuration once."""
        if self.loaded:
            return
        with self._lock:
            if not self.loaded:
                self.loadAll()

    def loadAll(self) -> dict:
        """(Re)read the local files and the central source; S_ERROR lists what failed."""
        with self._lock:
            self.localCFG = CFG()
            self.loadErrors = []
            for path in localConfigFiles():
                result = loadCFGFile(path)
                if result["OK"]:
                    self.localCFG = self.localCFG.mergeWith(result["Value"])
                elif os.environ.get("DIRACSYSCONFIG"):
                    self.loadErrors.append(result["Message"])
            self.localCFG = self.localCFG.mergeWith(self._overrides)
            self.loaded = True
            self._merged = None
            self.refreshCentral()
            if self.loadErrors:
                return S_ERROR("; ".join(self.loadErrors))
            return S_OK()

    def refreshCentral(self) -> dict:
        """Ask the central loader again; keep the previous copy when it fails."""
        with self._lock:
            result = self._centralLoader(self.localCFG)
            if not result["OK"]:
                self.loadErrors.append(result["Message"])
                return result
            self.centralCFG = result["Value"]
            self._merged = None
            return S_OK()

    def mergeLocal(self, cfg: CFG) -> None:
        """Merge ``cfg`` into the local configuration (its options win), also across reloads."""
        self.ensureLoaded()
        with self._lock:
            self._overrides = self._overrides.mergeWith(cfg)
            self.localCFG = self.localCFG.mergeWith(cfg)
            self._merged = None

    def merged(self) -> CFG:
        """The effective configuration: central, overridden by local."""
        self.ensureLoaded()
        with self._lock:
            if self._merged is None:
                self._merged = self.centralCFG.mergeWith(self.localCFG)
            return self._merged


gConfigurationData = ConfigurationData()

"""``gConfig``: typed read access to the merged configuration."""

from __future__ import annotations

from typing import Any

from diraccfg import CFG

from DIRAC.ConfigurationSystem.Client.ConfigurationData import ConfigurationData, gConfigurationData, loadCFGFile
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

_TRUE_WORDS = {"yes", "y", "true", "1", "on"}
_FALSE_WORDS = {"no", "n", "false", "0", "off"}


def toList(value: str) -> list[str]:
    """Split a cfg value on commas, dropping blanks."""
    return [item.strip() for item in value.split(",") if item.strip()]


def convertValue(raw: str, typeValue: Any) -> dict:
    """S_OK(raw converted to the type of ``typeValue``), S_ERROR when it does not convert."""
    if typeValue is None or isinstance(typeValue, str):
        return S_OK(raw)
    if isinstance(typeValue, bool):
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return S_OK(True)
        if word in _FALSE_WORDS:
            return S_OK(False)
        return S_ERROR(DErrno.EVALUE, f"{raw!r} is not a boolean")
    if isinstance(typeValue, (list, tuple)):
        return S_OK(type(typeValue)(toList(raw)))
    try:
        return S_OK(type(typeValue)(raw.strip()))
    except (TypeError, ValueError):
        return S_ERROR(DErrno.EVALUE, f"{raw!r} is not a {type(typeValue).__name__}")


def _cleanPath(path: str) -> str:
    return "/".join(part for part in str(path).split("/") if part)


class ConfigurationClient:
    """DIRAC's configuration API (``getValue``, ``getOption``, ``getSections``, ...)."""

    def __init__(self, data: ConfigurationData = gConfigurationData):
        self._data = data

    def _cfg(self) -> CFG:
        return self._data.merged()

    def getOption(self, optionPath: str, typeValue: Any = None) -> dict:
        """S_OK(value) for an existing option, converted like ``typeValue``."""
        path = _cleanPath(optionPath)
        cfg = self._cfg()
        if not path or not cfg.isOption(path):
            return S_ERROR(DErrno.ECONF, f"Path {optionPath} does not exist or it's not an option")
        return convertValue(cfg.getOption(path), typeValue)

    def getValue(self, optionPath: str, defaultValue: Any = None) -> Any:
        """The option's value typed like ``defaultValue``; the default when missing or unconvertible."""
        result = self.getOption(optionPath, defaultValue)
        return result["Value"] if result["OK"] else defaultValue

    def getSections(self, sectionPath: str, listOrdered: bool = True) -> dict:
        """S_OK(list of sub-section names)."""
        section = self._section(sectionPath)
        return section if not section["OK"] else S_OK(section["Value"].listSections(listOrdered))

    def getOptions(self, sectionPath: str, listOrdered: bool = True) -> dict:
        """S_OK(list of option names)."""
        section = self._section(sectionPath)
        return section if not section["OK"] else S_OK(section["Value"].listOptions(listOrdered))

    def getOptionsDict(self, sectionPath: str) -> dict:
        """S_OK({option: raw value}) for the options directly in a section."""
        section = self._section(sectionPath)
        if not section["OK"]:
            return section
        cfg = section["Value"]
        return S_OK({name: cfg.getOption(name) for name in cfg.listOptions()})

    def getOptionsDictRecursively(self, sectionPath: str) -> dict:
        """S_OK(nested dict) of a whole section."""
        section = self._section(sectionPath)
        return section if not section["OK"] else S_OK(section["Value"].getAsDict())

    def getConfigurationTree(self, root: str = "") -> dict:
        """S_OK({path: value}) of every option below ``root``."""
        result = self.getOptionsDictRecursively(root or "/")
        if not result["OK"]:
            return result
        flat: dict[str, str] = {}

        def walk(prefix: str, node: dict) -> None:
            for key, value in node.items():
                if isinstance(value, dict):
                    walk(f"{prefix}/{key}", value)
                else:
                    flat[f"{prefix}/{key}"] = value

        walk("/" + _cleanPath(root) if _cleanPath(root) else "", result["Value"])
        return S_OK(flat)

    def _section(self, sectionPath: str) -> dict:
        path = _cleanPath(sectionPath)
        cfg = self._cfg()
        if not path:
            return S_OK(cfg)
        if not cfg.isSection(path):
            return S_ERROR(DErrno.ESECTION, f"Path {sectionPath} does not exist or it's not a section")
        return S_OK(cfg.getRecursive(path)["value"])

    def loadFile(self, fileName: str) -> dict:
        """Merge a cfg file into the local configuration."""
        result = loadCFGFile(fileName)
        if result["OK"]:
            self._data.mergeLocal(result["Value"])
            return S_OK()
        return result

    def loadCFG(self, cfg: CFG) -> dict:
        """Merge a CFG object into the local configuration."""
        self._data.mergeLocal(cfg)
        return S_OK()

    def forceRefresh(self) -> dict:
        """Reread the local files and the central configuration now."""
        return self._data.loadAll()


gConfig = ConfigurationClient()

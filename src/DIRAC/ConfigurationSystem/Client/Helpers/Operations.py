"""``Operations``: VO-dependent options, looked up in ``/Operations/<VO>/...`` then ``/Operations/Defaults/...``."""

from __future__ import annotations

from typing import Any

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR

OPERATIONS_ROOT = "/Operations"


class Operations:
    """Reads an option from the caller's VO section first, then from ``Defaults``."""

    def __init__(self, vo: str | None = None, group: str | None = None):
        if not vo and group:
            vo = gConfig.getValue(f"/Registry/Groups/{group}/VO", "")
        self.vo = vo or gConfig.getValue("/DIRAC/VirtualOrganization", "")

    def _candidates(self, optionPath: str) -> list[str]:
        relative = optionPath.strip("/")
        sections = [self.vo] if self.vo else []
        return [f"{OPERATIONS_ROOT}/{section}/{relative}" for section in [*sections, "Defaults"]]

    def getValue(self, optionPath: str, defaultValue: Any = None) -> Any:
        """The first value found, typed like ``defaultValue``."""
        for path in self._candidates(optionPath):
            result = gConfig.getOption(path, defaultValue)
            if result["OK"]:
                return result["Value"]
        return defaultValue

    def getOptionsDict(self, sectionPath: str) -> dict:
        """S_OK(options of the first existing section)."""
        return self._first(gConfig.getOptionsDict, sectionPath)

    def getSections(self, sectionPath: str) -> dict:
        """S_OK(sub-sections of the first existing section)."""
        return self._first(gConfig.getSections, sectionPath)

    def _first(self, reader, sectionPath: str) -> dict:
        for path in self._candidates(sectionPath):
            result = reader(path)
            if result["OK"]:
                return result
        return S_ERROR(DErrno.ESECTION, f"No Operations section {sectionPath} for VO {self.vo or '(none)'} or Defaults")

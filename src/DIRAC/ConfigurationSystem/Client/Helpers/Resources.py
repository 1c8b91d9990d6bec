"""Read-only views of ``/Resources``: sites and the storage elements at them."""

from __future__ import annotations

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities.ReturnValues import S_OK

SITES_ROOT = "/Resources/Sites"
STORAGE_ELEMENTS_ROOT = "/Resources/StorageElements"


def getSites() -> dict:
    """S_OK(sorted list of every site name, across grids)."""
    sites: list[str] = []
    for grid in gConfig.getSections(SITES_ROOT).get("Value", []):
        sites.extend(gConfig.getSections(f"{SITES_ROOT}/{grid}").get("Value", []))
    return S_OK(sorted(sites))


def getSiteGrid(site: str) -> str:
    """The grid part of a ``GRID.Name.cc`` site name."""
    return site.split(".")[0]


def getSiteSEs(site: str) -> list[str]:
    """Storage elements declared at ``site`` (option ``SE``)."""
    return gConfig.getValue(f"{SITES_ROOT}/{getSiteGrid(site)}/{site}/SE", [])


def getSitesForSE(seName: str) -> dict:
    """S_OK(sites that list ``seName``)."""
    return S_OK([site for site in getSites()["Value"] if seName in getSiteSEs(site)])


def getStorageElements() -> dict:
    """S_OK(names of every storage element defined in the configuration)."""
    return gConfig.getSections(STORAGE_ELEMENTS_ROOT)

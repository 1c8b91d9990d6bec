"""FileCatalogFactory: make a catalog client object from its name and configuration.

``CatalogType`` (default: the catalog's name) names the plug-in: the class
``<CatalogType>Client`` in ``DIRAC.Resources.Catalog.<CatalogType>Client``.
``FileCatalog`` and DIRAC's historical ``DIRACFileCatalog`` both mean our
``FileCatalogClient``. ``CatalogURL`` (a ``System/Service`` name or https URLs)
is passed as the client's ``url``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

_ALIASES = {"DIRACFileCatalog": "FileCatalog", "FileCatalogClient": "FileCatalog"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class FileCatalogFactory:
    """Creates catalog plug-in objects."""

    def createCatalog(self, catalogName: str, catalogConfig: dict | None = None, **clientKwargs: Any) -> dict:
        """S_OK(catalog object) for ``catalogName`` configured by ``catalogConfig`` (options dict)."""
        config = dict(catalogConfig or {})
        catalogType = _ALIASES.get(config.get("CatalogType") or catalogName, config.get("CatalogType") or catalogName)
        if not _NAME.match(catalogType):
            return S_ERROR(DErrno.ECONF, f"catalog {catalogName}: invalid CatalogType {catalogType!r}")
        moduleName = f"DIRAC.Resources.Catalog.{catalogType}Client"
        try:
            module = importlib.import_module(moduleName)
        except ImportError as exc:
            return S_ERROR(DErrno.EIMPERR, f"catalog {catalogName}: no plug-in for CatalogType {catalogType}: {exc}")
        catalogClass = getattr(module, f"{catalogType}Client", None)
        if catalogClass is None:
            return S_ERROR(DErrno.ENOPLUGIN, f"catalog {catalogName}: {moduleName} has no class {catalogType}Client")
        url = config.get("CatalogURL") or None
        try:
            return S_OK(catalogClass(url=url, **clientKwargs))
        except (TypeError, ValueError) as exc:
            return S_ERROR(DErrno.ECONF, f"catalog {catalogName}: cannot create the client: {exc}")

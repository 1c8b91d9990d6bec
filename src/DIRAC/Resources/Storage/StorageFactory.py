"""``StorageFactory``: storage plugins from ``/Resources/StorageElements/<SE>``.

An SE section holds general options (``ReadAccess``, ``AccessProtocols``...) and one
sub-section per protocol; the section name is the plugin name unless
``PluginName`` says otherwise. ``BaseSE`` inherits a definition from
``/Resources/StorageElementBases`` (or another SE), the SE's own options winning;
``Alias`` makes an SE another name for a complete definition.
"""

from __future__ import annotations

import importlib
import re

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

SE_ROOT = "/Resources/StorageElements"
SE_BASES_ROOT = "/Resources/StorageElementBases"
_PLUGIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_INHERITANCE = 8


def _readSection(path: str) -> dict | None:
    """{'options': {...}, 'protocols': {section: options}} of a cfg section, None if absent."""
    options = gConfig.getOptionsDict(path)
    if not options["OK"]:
        return None
    protocols = {}
    for section in gConfig.getSections(path).get("Value", []):
        protocolOptions = gConfig.getOptionsDict(f"{path}/{section}").get("Value", {})
        voPaths = gConfig.getOptionsDict(f"{path}/{section}/VOPath").get("Value", {})
        protocols[section] = {**protocolOptions, "VOPath": voPaths} if voPaths else protocolOptions
    return {"options": options["Value"], "protocols": protocols}


def _merge(base: dict, own: dict) -> dict:
    """``own`` over ``base``: options replaced one by one, protocol sections merged by name."""
    protocols = {name: dict(options) for name, options in base["protocols"].items()}
    for name, options in own["protocols"].items():
        protocols[name] = {**protocols.get(name, {}), **options}
    return {"options": {**base["options"], **own["options"]}, "protocols": protocols}


def resolveStorageElement(seName: str) -> dict:
    """S_OK({'name', 'options', 'protocols'}) after following ``Alias`` and ``BaseSE``."""
    if not isinstance(seName, str) or not seName.strip():
        return S_ERROR(DErrno.EINVAL, f"storage element name must be a non-empty string, got {seName!r}")
    name = seName
    for _hop in range(MAX_INHERITANCE):
        section = _readSection(f"{SE_ROOT}/{name}")
        if section is None:
            where = f"{SE_ROOT}/{seName}" if name == seName else f"{SE_ROOT}/{name} (Alias of {seName})"
            return S_ERROR(DErrno.ECONF, f"storage element {seName} is not defined: no section {where}")
        alias = section["options"].get("Alias", "")
        if not alias:
            break
        name = alias
    else:
        return S_ERROR(DErrno.ECONF, f"storage element {seName}: Alias chain longer than {MAX_INHERITANCE}")
    definition = section
    seen = {name}
    for _hop in range(MAX_INHERITANCE):
        baseName = definition["options"].get("BaseSE", "")
        if not baseName:
            break
        if baseName in seen:
            return S_ERROR(DErrno.ECONF, f"storage element {seName}: BaseSE loop through {baseName}")
        seen.add(baseName)
        base = _readSection(f"{SE_BASES_ROOT}/{baseName}") or _readSection(f"{SE_ROOT}/{baseName}")
        if base is None:
            return S_ERROR(DErrno.ECONF, f"storage element {seName}: BaseSE {baseName} is not defined")
        options = {key: value for key, value in definition["options"].items() if key != "BaseSE"}
        definition = _merge(base, {"options": options, "protocols": definition["protocols"]})
    return S_OK({"name": seName, "options": definition["options"], "protocols": definition["protocols"]})


def loadPluginClass(pluginName: str) -> dict:
    """S_OK(class) ``<Plugin>Storage`` from ``DIRAC.Resources.Storage.<Plugin>Storage``."""
    if not _PLUGIN_NAME.match(pluginName or ""):
        return S_ERROR(DErrno.ENOPLUGIN, f"invalid storage plugin name {pluginName!r}")
    moduleName = f"DIRAC.Resources.Storage.{pluginName}Storage"
    try:
        module = importlib.import_module(moduleName)
    except ModuleNotFoundError as exc:
        if exc.name != moduleName:
            return S_ERROR(DErrno.EIMPERR, f"storage plugin {pluginName} cannot be loaded: {exc}")
        return S_ERROR(DErrno.ENOPLUGIN, f"no storage plugin named {pluginName} (no module {moduleName})")
    pluginClass = getattr(module, f"{pluginName}Storage", None)
    if pluginClass is None:
        return S_ERROR(DErrno.ENOPLUGIN, f"module {moduleName} has no class {pluginName}Storage")
    return S_OK(pluginClass)


class StorageFactory:
    """Builds the plugin objects of one storage element."""

    def __init__(self, useProxy: bool = False, vo: str | None = None):
        self.vo = vo

    def getStorages(
        self, storageName: str, protocolSections: list[str] | str | None = None, hideExceptions: bool = False
    ) -> dict:
        """S_OK({'StorageName', 'StorageOptions', 'StorageObjects', 'ProtocolOptions',
        'LocalPlugins', 'RemotePlugins'}) for ``storageName``, or S_ERROR naming the SE and the fault.

        ``protocolSections`` (protocol section or plugin names) keeps only those."""
        pluginList = [protocolSections] if isinstance(protocolSections, str) else protocolSections
        resolved = resolveStorageElement(storageName)
        if not resolved["OK"]:
            return resolved
        definition = resolved["Value"]
        if not definition["protocols"]:
            return S_ERROR(DErrno.ECONF, f"storage element {storageName} has no protocol section")
        objects, protocolOptions, local, remote = [], [], [], []
        for section, options in definition["protocols"].items():
            pluginName = options.get("PluginName") or section
            if pluginList and pluginName not in pluginList and section not in pluginList:
                continue
            options = self._withVOPath({**options, "PluginName": pluginName}, section)
            pluginClass = loadPluginClass(pluginName)
            if not pluginClass["OK"]:
                message = f"storage element {storageName}, section {section}: {pluginClass['Message']}"
                return S_ERROR(pluginClass["Errno"], message)
            checked = pluginClass["Value"].checkParameters(storageName, options)
            if not checked["OK"]:
                return checked
            plugin = pluginClass["Value"](storageName, options)
            plugin.protocolSectionName = section
            objects.append(plugin)
            protocolOptions.append(options)
            (local if str(options.get("Access", "remote")).lower() == "local" else remote).append(pluginName)
        if not objects:
            return S_ERROR(DErrno.ECONF, f"storage element {storageName} has no plugin among {pluginList}")
        return S_OK(
            {
                "StorageName": storageName,
                "StorageOptions": definition["options"],
                "StorageObjects": objects,
                "ProtocolOptions": protocolOptions,
                "LocalPlugins": local,
                "RemotePlugins": remote,
            }
        )

    def _withVOPath(self, options: dict, section: str) -> dict:
        """Replace ``Path`` by the VO's entry of the ``VOPath`` sub-section when there is one."""
        voPaths = options.pop("VOPath", {})
        if self.vo and self.vo in voPaths:
            options["Path"] = voPaths[self.vo]
        return options

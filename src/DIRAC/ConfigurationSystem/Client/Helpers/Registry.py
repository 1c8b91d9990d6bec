"""Who is who: users, groups, hosts and their properties, read from ``/Registry`` in the configuration.

Layout (DIRAC's)::

    /Registry/Users/<name>/DN              one DN (or a comma list)
    /Registry/Users/<name>/DefaultGroup    optional, list
    /Registry/Groups/<group>/Users         list of user names
    /Registry/Groups/<group>/Properties    list of properties (see DIRAC.Core.Security.Properties)
    /Registry/Groups/<group>/VO            the group's VO
    /Registry/Hosts/<host>/DN, Properties
    /Registry/DefaultGroup                 list, tried in order

Read on every call, so a configuration refresh is seen at once.
"""

from __future__ import annotations

from typing import Any

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

REGISTRY = "/Registry"
DEFAULT_GROUPS = ["user"]


def _sections(path: str) -> list[str]:
    result = gConfig.getSections(path)
    return result["Value"] if result["OK"] else []


def _normDN(dn: str) -> str:
    return dn.strip() if isinstance(dn, str) else ""


# options ----------------------------------------------------------------------------------------
def getUserOption(userName: str, optName: str, defaultValue: Any = "") -> Any:
    """``/Registry/Users/<userName>/<optName>`` typed like ``defaultValue``."""
    return gConfig.getValue(f"{REGISTRY}/Users/{userName}/{optName}", defaultValue)


def getGroupOption(groupName: str, optName: str, defaultValue: Any = "") -> Any:
    """``/Registry/Groups/<groupName>/<optName>`` typed like ``defaultValue``."""
    return gConfig.getValue(f"{REGISTRY}/Groups/{groupName}/{optName}", defaultValue)


def getHostOption(hostName: str, optName: str, defaultValue: Any = "") -> Any:
    """``/Registry/Hosts/<hostName>/<optName>`` typed like ``defaultValue``."""
    return gConfig.getValue(f"{REGISTRY}/Hosts/{hostName}/{optName}", defaultValue)


# listings ---------------------------------------------------------------------------------------
def getAllUsers() -> list[str]:
    """Every user name in the registry."""
    return _sections(f"{REGISTRY}/Users")


def getAllGroups() -> list[str]:
    """Every group name in the registry."""
    return _sections(f"{REGISTRY}/Groups")


def getHosts() -> dict:
    """S_OK(list of host names)."""
    return S_OK(_sections(f"{REGISTRY}/Hosts"))


# users and DNs ----------------------------------------------------------------------------------
def getDNForUsername(username: str) -> dict:
    """S_OK(list of the user's DNs)."""
    dns = getUserOption(username, "DN", [])
    if not dns:
        return S_ERROR(DErrno.EVALUE, f"No DN found for user {username}")
    return S_OK(dns)


def getUsernameForDN(dn: str, usersList: list[str] | None = None) -> dict:
    """S_OK(user name owning ``dn``)."""
    wanted = _normDN(dn)
    for user in usersList if usersList is not None else getAllUsers():
        if wanted and wanted in getUserOption(user, "DN", []):
            return S_OK(user)
    return S_ERROR(DErrno.EVALUE, f"No username found for DN {dn}")


def getHostnameForDN(dn: str) -> dict:
    """S_OK(host name whose certificate carries ``dn``)."""
    wanted = _normDN(dn)
    for host in _sections(f"{REGISTRY}/Hosts"):
        if wanted and wanted in getHostOption(host, "DN", []):
            return S_OK(host)
    return S_ERROR(DErrno.EVALUE, f"No hostname found for DN {dn}")


# groups ----------------------------------------------------------------------------------------
def getUsersInGroup(groupName: str, defaultValue: list | None = None) -> list[str]:
    """The users of a group (``defaultValue`` or [] when it has none)."""
    users = getGroupOption(groupName, "Users", [])
    return users or (defaultValue if defaultValue is not None else [])


def getGroupsForUser(username: str) -> dict:
    """S_OK(sorted list of the groups ``username`` belongs to)."""
    groups = [group for group in getAllGroups() if username in getGroupOption(group, "Users", [])]
    return S_OK(sorted(groups))


def getGroupsForDN(dn: str) -> dict:
    """S_OK(groups of the user owning ``dn``)."""
    result = getUsernameForDN(dn)
    return result if not result["OK"] else getGroupsForUser(result["Value"])


def findDefaultGroupForUser(userName: str) -> dict:
    """S_OK(the user's default group): the user's DefaultGroup, then /Registry/DefaultGroup, then any group."""
    result = getGroupsForUser(userName)
    if not result["OK"]:
        return result
    userGroups = result["Value"]
    candidates = getUserOption(userName, "DefaultGroup", []) + gConfig.getValue(
        f"{REGISTRY}/DefaultGroup", DEFAULT_GROUPS
    )
    for group in candidates:
        if group in userGroups:
            return S_OK(group)
    if userGroups:
        return S_OK(userGroups[0])
    return S_ERROR(DErrno.EVALUE, f"User {userName} belongs to no group")


def findDefaultGroupForDN(dn: str) -> dict:
    """S_OK(default group of the user owning ``dn``)."""
    result = getUsernameForDN(dn)
    return result if not result["OK"] else findDefaultGroupForUser(result["Value"])


def getPropertiesForGroup(groupName: str, defaultValue: list | None = None) -> list[str]:
    """The group's properties; ``defaultValue`` (or []) when the group is unknown."""
    if groupName not in getAllGroups():
        return defaultValue if defaultValue is not None else []
    return getGroupOption(groupName, "Properties", [])


def getPropertiesForHost(hostName: str, defaultValue: list | None = None) -> list[str]:
    """The host's properties; ``defaultValue`` (or []) when the host is unknown."""
    if hostName not in _sections(f"{REGISTRY}/Hosts"):
        return defaultValue if defaultValue is not None else []
    return getHostOption(hostName, "Properties", [])


def getPropertiesForEntity(group: str, name: str = "", dn: str = "", defaultValue: list | None = None) -> list[str]:
    """Properties of a host (group ``hosts``: by ``name`` or ``dn``) or of a user group."""
    if group == "hosts":
        if not name and dn:
            result = getHostnameForDN(dn)
            name = result["Value"] if result["OK"] else ""
        return getPropertiesForHost(name, defaultValue)
    return getPropertiesForGroup(group, defaultValue)


# VOs ---------------------------------------------------------------------------------------------
def getVOForGroup(group: str) -> str:
    """The group's VO, else ``/DIRAC/VirtualOrganization``, else ''."""
    return getGroupOption(group, "VO", "") or gConfig.getValue("/DIRAC/VirtualOrganization", "")


def getVOForUser(userName: str) -> dict:
    """S_OK(sorted list of the VOs of the user's groups)."""
    result = getGroupsForUser(userName)
    if not result["OK"]:
        return result
    return S_OK(sorted({vo for vo in (getVOForGroup(group) for group in result["Value"]) if vo}))


def getGroupsForVO(vo: str) -> dict:
    """S_OK(sorted groups whose VO is ``vo``)."""
    return S_OK(sorted(group for group in getAllGroups() if getVOForGroup(group) == vo))

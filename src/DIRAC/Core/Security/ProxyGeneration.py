"""Make the user's proxy from the user certificate, with a group the registry allows.

This is the logic behind ``dirac-proxy-init``, kept here so the script stays thin and
other code (tests, installers) can make proxies the same way.
"""

from __future__ import annotations

import re

from DIRAC.ConfigurationSystem.Client.Helpers import Registry
from DIRAC.Core.Security import Locations
from DIRAC.Core.Security.ProxyInfo import getProxyInfo
from DIRAC.Core.Security.X509Chain import X509Chain
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

DEFAULT_LIFETIME = 24 * 3600
_HHMM = re.compile(r"^(\d+):([0-5]?\d)$")


def parseLifetime(text: str) -> dict:
    """S_OK(seconds) from ``HH:MM``."""
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if not match:
        return S_ERROR(f"Invalid validity {text!r}: expected HH:MM, e.g. 24:00")
    seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60
    return S_OK(seconds) if seconds > 0 else S_ERROR(f"Invalid validity {text!r}: it must be longer than 0")


def loadUserCredentials(certFile: str | None = None, keyFile: str | None = None, password: str | None = None) -> dict:
    """S_OK(X509Chain with key) of the user certificate (``Locations.getCertificateAndKeyLocation`` by default)."""
    if not certFile or not keyFile:
        location = Locations.getCertificateAndKeyLocation()
        if not location:
            return S_ERROR(
                "No user certificate found: give --cert and --key, set X509_USER_CERT / X509_USER_KEY "
                "or put usercert.pem and userkey.pem in ~/.globus"
            )
        certFile = certFile or location[0]
        keyFile = keyFile or location[1]
    chain = X509Chain()
    result = chain.loadChainFromFile(certFile)
    if result["OK"]:
        result = chain.loadKeyFromFile(keyFile, password)
    return S_OK(chain) if result["OK"] else result


def checkGroupForDN(dn: str, group: str | None = None) -> dict:
    """S_OK((username, group)): the user owning ``dn`` and ``group`` (or the user's default group),
    S_ERROR when the DN is not registered or the group is not one of the user's."""
    result = Registry.getUsernameForDN(dn)
    if not result["OK"]:
        return S_ERROR(f"Your certificate DN {dn} is not registered in the DIRAC registry (/Registry/Users)")
    username = result["Value"]
    groups = Registry.getGroupsForUser(username)
    if not groups["OK"]:
        return groups
    if group:
        if group not in groups["Value"]:
            allowed = ", ".join(groups["Value"]) or "none"
            return S_ERROR(f"User {username} is not a member of group {group} (member of: {allowed})")
        return S_OK((username, group))
    result = Registry.findDefaultGroupForUser(username)
    if not result["OK"]:
        return S_ERROR(f"No group for user {username}: {result['Message']}")
    return S_OK((username, result["Value"]))


def generateProxy(
    certFile: str | None = None,
    keyFile: str | None = None,
    group: str | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    outFile: str | None = None,
    password: str | None = None,
    checkRegistry: bool = True,
) -> dict:
    """Sign a proxy with the user certificate and write it (mode 0600); S_OK(getProxyInfo dict of it).

    ``outFile`` defaults to ``$X509_USER_PROXY`` or ``/tmp/x509up_u<uid>``. With
    ``checkRegistry`` the certificate's DN must belong to a registered user and ``group``
    (default: the user's default group) must be one of that user's groups.
    """
    result = loadUserCredentials(certFile, keyFile, password)
    if not result["OK"]:
        return result
    chain = result["Value"]
    if checkRegistry:
        identity = chain.getIdentityDN()
        if not identity["OK"]:
            return identity
        result = checkGroupForDN(identity["Value"], group)
        if not result["OK"]:
            return result
        group = result["Value"][1]
    result = chain.generateProxyToFile(outFile or Locations.getDefaultProxyLocation(), lifetime, diracGroup=group)
    if not result["OK"]:
        return result
    return getProxyInfo(result["Value"])

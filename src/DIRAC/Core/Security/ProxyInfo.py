"""``getProxyInfo``: what a proxy is (who, which group, how long left) and what the registry says of it."""

from __future__ import annotations

from DIRAC.Core.Security import Locations
from DIRAC.Core.Security.X509Chain import X509Chain
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK


def getProxyInfo(proxy: str | X509Chain | bool = False, disableVOMS: bool = True) -> dict:
    """S_OK(dict) describing a proxy.

    ``proxy``: a file path, an ``X509Chain``, or False for the user's proxy (``Locations.getProxyLocation``).
    Keys: ``chain`` (X509Chain), ``subject``, ``issuer``, ``identity``, ``secondsLeft``,
    ``isProxy``, ``isLimitedProxy``, ``group`` (when the proxy has one), ``path`` (when read
    from a file), ``validDN``, ``validGroup``, and ``username`` / ``groupProperties`` when the
    registry knows them. VOMS is not supported: ``hasVOMS`` is always False.
    """
    path = None
    if isinstance(proxy, X509Chain):
        chain = proxy
    else:
        path = proxy or Locations.getProxyLocation()
        if not path:
            return S_ERROR(f"No proxy found (looked at $X509_USER_PROXY and {Locations.getDefaultProxyLocation()})")
        if not isinstance(path, str):
            return S_ERROR(f"proxy must be a path, an X509Chain or False, not {type(proxy).__name__}")
        chain = X509Chain()
        result = chain.loadProxyFromFile(path)
        if not result["OK"]:
            return S_ERROR(f"Cannot load proxy: {result['Message']}")
    result = chain.getCredentials(ignoreDefault=True)
    if not result["OK"]:
        return result
    info = dict(result["Value"])
    info["chain"] = chain
    info["hasVOMS"] = False
    if path:
        info["path"] = path
    return S_OK(info)


def getProxyInfoAsString(proxyLoc: str | bool = False, disableVOMS: bool = True) -> dict:
    """S_OK(text of ``formatProxyInfoAsString``) for a proxy file (the user's by default)."""
    result = getProxyInfo(proxyLoc, disableVOMS)
    return result if not result["OK"] else S_OK(formatProxyInfoAsString(result["Value"]))


def formatSeconds(seconds: int) -> str:
    """``HH:MM:SS`` (hours may exceed 24)."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def formatProxyInfoAsString(infoDict: dict) -> str:
    """A human-readable block, one ``key : value`` per line, of a ``getProxyInfo`` dict."""
    properties = infoDict.get("groupProperties")
    rows = [
        ("subject", infoDict.get("subject")),
        ("issuer", infoDict.get("issuer")),
        ("identity", infoDict.get("identity")),
        ("timeleft", formatSeconds(infoDict["secondsLeft"]) if "secondsLeft" in infoDict else None),
        ("DIRAC group", infoDict.get("group")),
        ("rfc", "True" if infoDict.get("isProxy") else None),
        ("path", infoDict.get("path")),
        ("username", infoDict.get("username")),
        ("properties", ", ".join(str(p) for p in properties) if properties is not None else None),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)} : {value}" for name, value in rows if value is not None)

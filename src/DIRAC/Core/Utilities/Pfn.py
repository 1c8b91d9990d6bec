"""Split and join storage URLs (``proto://host:port/path``) into DIRAC's PFN dict."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK


def pfnparse(pfn: str) -> dict:
    """S_OK({'Protocol','Host','Port','Path','FileName','WSUrl'}) for ``pfn``.

    A bare path (no ``scheme://``) parses with an empty protocol, as in DIRAC.
    """
    if not isinstance(pfn, str) or not pfn:
        return S_ERROR(f"Wrong URL: {pfn!r} is not a non-empty string")
    if "://" not in pfn:
        directory, fileName = os.path.split(pfn)
        return S_OK({"Protocol": "", "Host": "", "Port": "", "Path": directory, "FileName": fileName, "WSUrl": ""})
    try:
        parts = urlsplit(pfn)
        port = parts.port
    except ValueError as exc:
        return S_ERROR(f"Wrong URL {pfn}: {exc}")
    path = parts.path
    if parts.query:
        path = f"{path}?{parts.query}"
    directory, fileName = path.rsplit("/", 1) if "/" in path else ("", path)
    return S_OK(
        {
            "Protocol": parts.scheme,
            "Host": parts.hostname or "",
            "Port": str(port) if port is not None else "",
            "Path": directory or ("/" if path.startswith("/") else ""),
            "FileName": fileName,
            "WSUrl": "",
        }
    )


def pfnunparse(pfnDict: dict) -> dict:
    """S_OK(url) built from a PFN dict (the inverse of ``pfnparse``)."""
    try:
        protocol, host, port = pfnDict["Protocol"], pfnDict["Host"], str(pfnDict.get("Port") or "")
        path, fileName = pfnDict["Path"], pfnDict["FileName"]
    except (KeyError, TypeError) as exc:
        return S_ERROR(f"Wrong PFN dict: missing {exc}")
    fullPath = "/".join(part.strip("/") for part in (path, fileName) if part.strip("/"))
    fullPath = "/" + fullPath if (path.startswith("/") or protocol) else fullPath
    if not protocol:
        return S_OK(fullPath)
    netloc = f"{host}:{port}" if port else host
    return S_OK(f"{protocol}://{netloc}{fullPath}")

"""Validation of what callers hand the file catalog: LFNs and the per-LFN values of each method.

Every check returns ``(value, None)`` or ``(None, reason)``; the catalog turns a
reason into a ``Failed`` entry for that LFN and writes nothing for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.DataManagementSystem.DB.FileCatalogSchema import MAX_DIR_PATH, MAX_IDENTITY, MAX_NAME, MAX_SE
from DIRAC.Resources.Catalog.Utilities import checkArgumentFormat

Checked = tuple[Any, str | None]
ValueCheck = Callable[[Any], Checked]

ADLER32 = "Adler32"
_ADLER_NAMES = {"adler32", "ad", "adler"}
_HEX = set("0123456789abcdefABCDEF")


def normalizeLFN(lfn: object) -> Checked:
    """(absolute path without trailing '/', None) or (None, reason)."""
    result = checkLFN(lfn)
    if not result["OK"]:
        return None, result["Message"]
    path = lfn if lfn == "/" else lfn.rstrip("/")
    if not path.isprintable():
        # C0/C1 controls, line and paragraph separators, bidi overrides, unusual blanks: one
        # name must print as one unambiguous line (no forged output lines, no spoofed names).
        return None, f"LFN contains control characters (not printable): {path!r}"
    directory, _, name = path.rpartition("/")
    if len(name) > MAX_NAME:
        return None, f"LFN has a name longer than {MAX_NAME} characters: {path}"
    if len(directory) > MAX_DIR_PATH:
        return None, f"LFN directory part longer than {MAX_DIR_PATH} characters: {path[:80]}..."
    return path, None


def checkDirectoryPath(path: str) -> str | None:
    """The reason a directory cannot be stored at ``path`` (too long), None when it can."""
    if len(path) > MAX_DIR_PATH:
        return f"directory path longer than {MAX_DIR_PATH} characters: {path[:80]}..."
    return None


def prepareLFNs(lfns: object, valueCheck: ValueCheck | None = None) -> dict:
    """Sort the caller's LFN argument into valid items and failures.

    Returns S_OK((items, keyMap, failed)): ``items`` maps each normalised path to
    its checked value, ``keyMap`` maps it back to the caller's key(s) and
    ``failed`` holds ``{callerKey: reason}`` for what was refused.
    """
    result = checkArgumentFormat(lfns)
    if not result["OK"]:
        return result
    items: dict[str, Any] = {}
    keyMap: dict[str, list] = {}
    failed: dict = {}
    conflicting: set[str] = set()
    for key, rawValue in result["Value"].items():
        path, reason = normalizeLFN(key)
        if reason is None and valueCheck is not None:
            value, reason = valueCheck(rawValue)
        else:
            value = rawValue
        if reason is not None:
            failed[key] = reason
            continue
        if path in items and items[path] != value:
            conflicting.add(path)
        items.setdefault(path, value)
        keyMap.setdefault(path, []).append(key)
    for path in conflicting:
        items.pop(path)
        for key in keyMap.pop(path):
            failed[key] = f"{path} is given more than once with different values"
    return {"OK": True, "Value": (items, keyMap, failed)}


def expandResult(successful: dict, failed: dict, keyMap: dict, preFailed: dict) -> dict:
    """{'Successful', 'Failed'} keyed by the caller's own LFN strings."""
    out = {"Successful": {}, "Failed": dict(preFailed)}
    for target, source in (("Successful", successful), ("Failed", failed)):
        for path, value in source.items():
            for key in keyMap.get(path, [path]):
                out[target][key] = value
    return out


def _isInt(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shortText(value: object, what: str, limit: int, required: bool = True) -> Checked:
    if value is None or value == "":
        return (None, f"missing {what}") if required else ("", None)
    if not isinstance(value, str):
        return None, f"{what} must be a string, got {type(value).__name__}"
    if len(value) > limit:
        return None, f"{what} longer than {limit} characters"
    if any(ord(char) < 32 for char in value):
        return None, f"{what} contains control characters"
    return value, None


def normalizeChecksum(checksum: object, checksumType: object) -> Checked:
    """((checksum, type), None): adler32 as 8 lowercase hex digits; other types as given."""
    ctype, reason = _shortText(checksumType, "ChecksumType", 32, required=False)
    if reason:
        return None, reason
    ctype = ctype or ADLER32
    if ctype.lower() in _ADLER_NAMES:
        ctype = ADLER32
    if _isInt(checksum) and ctype == ADLER32 and 0 <= checksum < 2**32:
        checksum = f"{checksum:08x}"
    value, reason = _shortText(checksum, "Checksum", 64)
    if reason:
        return None, reason
    value = value.strip()
    if ctype == ADLER32:
        if not 1 <= len(value) <= 8 or not set(value) <= _HEX:
            return None, f"Checksum {value!r} is not an adler32 (1 to 8 hexadecimal digits)"
        value = value.lower().zfill(8)
    return (value, ctype), None


def _needDict(value: object, what: str) -> str | None:
    if not isinstance(value, dict):
        return f"{what} must be a dict, got {type(value).__name__}"
    return None


def _replicaPlace(info: dict) -> Checked:
    """{SE, PFN} of a file or replica description (SE required, PFN optional)."""
    se, reason = _shortText(info.get("SE"), "SE", MAX_SE)
    if reason:
        return None, reason
    pfn, reason = _shortText(info.get("PFN"), "PFN", 4096, required=False)
    if reason:
        return None, reason
    return {"SE": se, "PFN": pfn}, None


def checkFileInfo(info: object) -> Checked:
    """addFile's value: {SE, Size, Checksum, ChecksumType?, GUID?, PFN?}; GUID made when missing."""
    reason = _needDict(info, "file description")
    if reason:
        return None, reason
    size = info.get("Size")
    if not _isInt(size) or size < 0:
        return None, f"Size must be a non-negative integer, got {size!r}"
    replica, reason = _replicaPlace(info)
    if reason:
        return None, reason
    checksum, reason = normalizeChecksum(info.get("Checksum"), info.get("ChecksumType"))
    if reason:
        return None, reason
    guid, reason = _shortText(info.get("GUID"), "GUID", 64, required=False)
    if reason:
        return None, reason
    return {
        **replica,
        "Size": size,
        "Checksum": checksum[0],
        "ChecksumType": checksum[1],
        "GUID": guid or str(uuid.uuid4()).upper(),
        "GUIDGiven": bool(guid),
    }, None


def checkReplicaInfo(info: object) -> Checked:
    """addReplica's value: {SE, PFN?}."""
    reason = _needDict(info, "replica description")
    if reason:
        return None, reason
    return _replicaPlace(info)


def checkReplicaSE(info: object) -> Checked:
    """removeReplica's value: {SE} (a bare SE name is accepted too)."""
    if isinstance(info, str):
        info = {"SE": info}
    reason = _needDict(info, "replica description")
    if reason:
        return None, reason
    return _shortText(info.get("SE"), "SE", MAX_SE)


def _fromDictOrValue(info: object, key: str) -> object:
    return info.get(key) if isinstance(info, dict) else info


def checkOwner(info: object) -> Checked:
    """changePathOwner's value: a user name, or {'Owner': name}."""
    return _identityName(_fromDictOrValue(info, "Owner"), "Owner")


def checkGroup(info: object) -> Checked:
    """changePathGroup's value: a group name, or {'Group': name}."""
    return _identityName(_fromDictOrValue(info, "Group"), "Group")


def _identityName(value: object, what: str) -> Checked:
    name, reason = _shortText(value, what, MAX_IDENTITY)
    if reason:
        return None, reason
    if any(char.isspace() for char in name) or "/" in name:
        return None, f"{what} {name!r} contains blanks or '/'"
    return name, None


def checkMode(info: object) -> Checked:
    """changePathMode's value: an int 0..0o777, or {'Mode': int}."""
    mode = _fromDictOrValue(info, "Mode")
    if not _isInt(mode) or not 0 <= mode <= 0o777:
        return None, f"Mode must be an integer between 0 and 0o777, got {mode!r}"
    return mode, None

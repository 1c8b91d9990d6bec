"""Small helpers of the DataManager: argument shapes, catalog answers, local checksum checks.

They are pure functions (no catalog, no storage), so the DataManager's own
code reads as the sequence of steps of each operation.
"""

from __future__ import annotations

import os
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import compareAdler, fileAdler
from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK, isReturnStructure


def splitLFNs(lfn: Any) -> dict:
    """S_OK((lfns, failed)): the valid LFNs of a str/list/tuple/set/dict argument, in order.

    ``failed`` maps each malformed LFN to the reason; a container that is not
    one of those types, or holds non-strings, is an S_ERROR.
    """
    if isinstance(lfn, str):
        candidates = [lfn]
    elif isinstance(lfn, (list, tuple, set, frozenset, dict)):
        candidates = list(lfn)
    else:
        return S_ERROR(DErrno.ETYPE, f"LFNs must be a str, a list or a dict, got {type(lfn).__name__}: {lfn!r}")
    lfns: list[str] = []
    failed: dict[str, str] = {}
    for item in candidates:
        if not isinstance(item, str):
            return S_ERROR(DErrno.ETYPE, f"every LFN must be a string, got {type(item).__name__}: {item!r}")
        checked = checkLFN(item)
        if not checked["OK"]:
            failed[item] = checked["Message"]
        elif item == "/":
            failed[item] = "'/' is a directory, not a file"
        elif item not in lfns:
            lfns.append(item)
    return S_OK((lfns, failed))


def reasonText(value: Any) -> str:
    """A readable reason from a catalog or storage failure entry.

    The FileCatalog facade gives write failures as ``{catalogName: reason}``;
    some callers give S_ERROR dicts; plain strings pass through.
    """
    if isReturnStructure(value):
        return str(value.get("Message", value))
    if isinstance(value, dict):
        return "; ".join(f"{name}: {reasonText(reason)}" for name, reason in value.items())
    return str(value)


def splitBulk(result: dict, lfns: list[str], what: str) -> tuple[dict, dict]:
    """``(successful, failed)`` of a bulk S_OK / S_ERROR for ``lfns``; reasons as text.

    A whole-call S_ERROR fails every LFN with its message. With the facade an
    LFN can be Successful in the master and Failed in another catalog: it
    counts as successful. LFNs missing from both sides fail too.
    """
    if not result.get("OK"):
        message = f"{what}: {result.get('Message', 'unknown error')}"
        return {}, dict.fromkeys(lfns, message)
    value = result.get("Value")
    if not isinstance(value, dict) or "Successful" not in value:
        return {}, dict.fromkeys(lfns, f"{what}: unexpected answer {str(value)[:200]}")
    successful = {lfn: value["Successful"][lfn] for lfn in lfns if lfn in value["Successful"]}
    failed = {}
    for lfn in lfns:
        if lfn in successful:
            continue
        reason = value.get("Failed", {}).get(lfn)
        failed[lfn] = f"{what}: {reasonText(reason) if reason is not None else 'no answer for this LFN'}"
    return successful, failed


def checkLocalCopy(path: str, size: Any, checksum: Any) -> dict:
    """S_OK(adler32) when the local file ``path`` has the catalog's ``size`` and ``checksum``.

    A catalog entry without a checksum is checked on its size only.
    """
    try:
        actualSize = os.stat(path).st_size
    except OSError as exc:
        return S_ERROR(DErrno.ENOENT, f"local copy {path} cannot be read: {exc.strerror}")
    if isinstance(size, int) and actualSize != size:
        return S_ERROR(DErrno.EFILESIZE, f"local copy has {actualSize} bytes, the catalog says {size}")
    actual = fileAdler(path)
    if actual is False:
        return S_ERROR(DErrno.EIO, f"local copy {path} cannot be read to compute its adler32")
    if checksum and not compareAdler(actual, str(checksum)):
        return S_ERROR(DErrno.EBADCKS, f"local copy has adler32 {actual}, the catalog says {checksum}")
    return S_OK(actual)


def perItem(value: Any, lfn: str, single: bool) -> Any:
    """The value for ``lfn`` of an argument given either once (single call) or as ``{lfn: value}``."""
    if isinstance(value, dict):
        return value.get(lfn)
    return value if single else None

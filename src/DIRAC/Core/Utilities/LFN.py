"""Checks on logical file names shared by every storage plugin and catalog."""

from __future__ import annotations

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK


def checkLFN(lfn: object) -> dict:
    """S_OK(lfn) for an absolute, normalised LFN; S_ERROR naming the fault otherwise.

    Refused: non-strings, empty names, relative names, and names with empty,
    ``.`` or ``..`` segments (they would silently map to another object).
    """
    if not isinstance(lfn, str):
        return S_ERROR(DErrno.ETYPE, f"LFN must be a string, got {type(lfn).__name__}: {lfn!r}")
    if not lfn:
        return S_ERROR(DErrno.EINVAL, "empty LFN")
    if not lfn.startswith("/"):
        return S_ERROR(DErrno.EINVAL, f"LFN must be absolute (start with '/'): {lfn}")
    segments = lfn[1:].rstrip("/").split("/")
    if lfn == "/":
        return S_OK(lfn)
    for segment in segments:
        if segment in ("", ".", ".."):
            return S_ERROR(DErrno.EINVAL, f"LFN has an empty, '.' or '..' segment: {lfn}")
    return S_OK(lfn)

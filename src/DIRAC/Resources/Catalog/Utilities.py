"""Argument helpers shared by the catalog clients, the facade and the catalog database."""

from __future__ import annotations

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK


def checkArgumentFormat(path: object, generateMap: bool = False) -> dict:
    """S_OK({lfn: value}) from a single LFN (str), a list/tuple/set of LFNs, or a dict ``{lfn: value}``.

    As in DIRAC, a str or list becomes ``{lfn: True}``. With ``generateMap`` the
    value is ``(dict, {lfn: original})`` (identity map here: we do not rewrite
    names, bad names are reported by the catalog per LFN instead).
    """
    if isinstance(path, str):
        result = {path: True}
    elif isinstance(path, (list, tuple, set, frozenset)):
        try:
            result = dict.fromkeys(path, True)
        except TypeError:
            return S_ERROR(DErrno.ETYPE, f"LFN lists must hold strings: {str(path)[:200]}")
    elif isinstance(path, dict):
        result = dict(path)
    else:
        return S_ERROR(
            DErrno.ETYPE, f"LFNs must be a str, a list or a dict, got {type(path).__name__}: {str(path)[:200]}"
        )
    if generateMap:
        return S_OK((result, {lfn: lfn for lfn in result}))
    return S_OK(result)

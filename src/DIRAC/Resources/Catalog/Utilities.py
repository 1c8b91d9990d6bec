"""Argument helpers shared by the catalog clients, the facade and the catalog database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

#: Entries per page when a directory is listed page by page (``listDirectoryPage``).
LIST_PAGE = 1000
#: Most pages one walk asks for (10^5 pages of 1000: a hundred million entries).
MAX_PAGES = 100_000


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


def iterDirectoryPages(
    listPage: Callable[..., dict], path: str, verbose: bool = False, pageSize: int = LIST_PAGE
) -> Iterator[dict]:
    """The results of ``listPage(path, verbose, marker, pageSize)`` for the successive pages of ``path``.

    ``listPage`` is a ``listDirectoryPage`` (of the facade, the client or, with the
    credentials bound, the DB). Every result is yielded as it is; the walk stops after
    the last page (``Next`` empty), after a result that is not a page of ``path``
    (S_ERROR, or ``path`` in Failed: the caller reports it), or with an S_ERROR when a
    marker does not move forward. Only one page is in memory at a time.
    """
    marker = ""
    for _page in range(MAX_PAGES):
        result = listPage(path, verbose, marker, pageSize)
        yield result
        if not result["OK"] or path not in result["Value"].get("Successful", {}):
            return
        nextMarker = result["Value"]["Successful"][path].get("Next", "")
        if not nextMarker:
            return
        if nextMarker == marker:
            yield S_ERROR(DErrno.EIO, f"listing {path}: the catalog repeated a page (marker {nextMarker[:80]!r})")
            return
        marker = nextMarker
    yield S_ERROR(DErrno.EIO, f"listing {path}: more than {MAX_PAGES} pages")

"""Helpers shared by every storage plugin: argument normalisation and bulk fan-out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

DEFAULT_MAX_WORKERS = 16


def checkArgumentFormat(path: Any, generateMap: bool = False) -> dict:
    """S_OK({item: value}) from a str, list/tuple/set or dict of items.

    A str or a list becomes a dict with ``False`` values. With ``generateMap``
    the result is S_OK((dict, map)) where map keeps the original spelling, as DIRAC.
    """
    if isinstance(path, str):
        items = {path: False}
    elif isinstance(path, (list, tuple, set)):
        if not all(isinstance(item, str) for item in path):
            return S_ERROR(DErrno.ETYPE, f"every item must be a string: {list(path)!r}")
        items = dict.fromkeys(path, False)
    elif isinstance(path, dict):
        if not all(isinstance(item, str) for item in path):
            return S_ERROR(DErrno.ETYPE, f"every key must be a string: {list(path)!r}")
        items = dict(path)
    else:
        return S_ERROR(DErrno.ETYPE, f"expected a str, list or dict, got {type(path).__name__}: {path!r}")
    if generateMap:
        return S_OK((items, {item: item for item in items}))
    return S_OK(items)


def bulkResult(successful: dict | None = None, failed: dict | None = None) -> dict:
    """S_OK({'Successful': ..., 'Failed': ...})."""
    return S_OK({"Successful": successful or {}, "Failed": failed or {}})


def runBulk(
    items: Iterable[tuple[str, Any]],
    action: Callable[[str, Any], dict],
    maxWorkers: int = DEFAULT_MAX_WORKERS,
) -> tuple[dict, dict]:
    """Apply ``action(item, value) -> S_OK/S_ERROR`` to each item in a bounded thread pool.

    Returns ``(successful, failed)``: values of S_OK, messages of S_ERROR. An
    exception in ``action`` is a bug, but it still becomes that item's
    ``Failed`` entry rather than losing the other items' results.
    """
    pairs = list(items)

    def guarded(pair: tuple[str, Any]) -> dict:
        try:
            return action(*pair)
        except Exception as exc:  # noqa: BLE001 - one item's bug must not lose the others' results
            return S_ERROR(DErrno.EEEXCEPTION, f"{type(exc).__name__}: {exc}")

    if len(pairs) <= 1 or maxWorkers <= 1:
        results = [guarded(pair) for pair in pairs]
    else:
        with ThreadPoolExecutor(max_workers=min(maxWorkers, len(pairs))) as pool:
            results = list(pool.map(guarded, pairs))
    successful, failed = {}, {}
    for (item, _), result in zip(pairs, results, strict=True):
        if result["OK"]:
            successful[item] = result["Value"]
        else:
            failed[item] = result["Message"]
    return successful, failed


def checkLocalSource(fileName: Any) -> dict:
    """S_OK(size) for a readable regular file, S_ERROR naming the problem otherwise."""
    if not isinstance(fileName, str) or not fileName:
        return S_ERROR(DErrno.ETYPE, f"local file name must be a non-empty string, got {fileName!r}")
    if not os.path.exists(fileName):
        return S_ERROR(DErrno.ENOENT, f"local file {fileName} does not exist")
    if not os.path.isfile(fileName):
        return S_ERROR(DErrno.EISDIR, f"local path {fileName} is not a regular file")
    if not os.access(fileName, os.R_OK):
        return S_ERROR(DErrno.EACCES, f"local file {fileName} is not readable")
    return S_OK(os.path.getsize(fileName))

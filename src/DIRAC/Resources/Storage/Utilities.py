"""Helpers shared by every storage plugin: argument normalisation, bulk fan-out, local file and stored name checks."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

DEFAULT_MAX_WORKERS = 16
#: bytes asked per read() of ``readWholeFile``
SMALL_IO_BLOCK = 1024 * 1024


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


#: threads of the shared pool: the most items any bulk call can have in flight (an SE's
#: MaxWorkers above this is cut to it); threads start only when a call needs them
_POOL_THREADS = 256
_inPoolWorker = threading.local()
_pool: ThreadPoolExecutor | None = None
_poolLock = threading.Lock()


def _sharedPool() -> ThreadPoolExecutor:
    """One process-wide pool: starting threads for every bulk call costs more than the calls."""
    global _pool
    with _poolLock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=_POOL_THREADS,
                thread_name_prefix="dirac-bulk",
                initializer=lambda: setattr(_inPoolWorker, "active", True),
            )
        return _pool


def runBulk(
    items: Iterable[tuple[str, Any]],
    action: Callable[[str, Any], dict],
    maxWorkers: int = DEFAULT_MAX_WORKERS,
) -> tuple[dict, dict]:
    """Apply ``action(item, value) -> S_OK/S_ERROR`` to each item, at most ``maxWorkers`` at a time.

    Returns ``(successful, failed)``: values of S_OK, messages of S_ERROR. An
    exception in ``action`` is a bug, but it still becomes that item's
    ``Failed`` entry rather than losing the other items' results. A bulk call
    made from inside another one runs serially, so the shared pool cannot deadlock.
    """
    pairs = list(items)
    results: list[dict | None] = [None] * len(pairs)
    cursor = iter(range(len(pairs)))
    cursorLock = threading.Lock()

    def drain() -> None:
        while True:
            with cursorLock:
                index = next(cursor, None)
            if index is None:
                return
            try:
                results[index] = action(*pairs[index])
            except Exception as exc:  # noqa: BLE001 - one item's bug must not lose the others' results
                results[index] = S_ERROR(DErrno.EEEXCEPTION, f"{type(exc).__name__}: {exc}")

    workers = min(maxWorkers, len(pairs))
    if workers <= 1 or getattr(_inPoolWorker, "active", False):
        drain()
    else:
        futures = [_sharedPool().submit(drain) for _ in range(workers)]
        for future in futures:
            future.result()
    successful, failed = {}, {}
    for (item, _), result in zip(pairs, results, strict=True):
        if result["OK"]:
            successful[item] = result["Value"]
        else:
            failed[item] = result["Message"]
    return successful, failed


class PendingContext:
    """One item's context for a bulk call that is still being prepared (a batch of URLs a
    service is signing, say): the call's workers start on the items whose batch is ready
    while later batches are prepared. ``result()`` waits for it."""

    def __init__(self, batch: Future, item: str):
        self._batch = batch
        self._item = item

    def result(self) -> Any:
        """The item's context (S_ERROR when it could not be prepared), once its batch is done."""
        return self._batch.result()[self._item]


def settledContext(context: Any) -> Any:
    """What ``_prepare`` gave for one item, waiting for it when it is still a ``PendingContext``."""
    return context.result() if isinstance(context, PendingContext) else context


def growingBatches(items: list[str], first: int, largest: int) -> list[list[str]]:
    """``items`` cut in batches of ``first``, then twice as many each time up to ``largest``: the
    first answer comes quickly, the later ones in few requests."""
    batches, start, size = [], 0, max(first, 1)
    while start < len(items):
        batches.append(items[start : start + size])
        start += size
        size = min(size * 2, largest)
    return batches


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


#: control characters: refused in stored names that become local paths or signed URLs
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def readWholeFile(path: str) -> bytes:
    """The bytes of small local file ``path``, up to its end; OSError when it cannot be read.

    Plain descriptor calls: a buffered file object costs more syscalls (fstat twice, the isatty
    ioctl, seeks) and more CPU than reading a few KiB, paid once per file of a bulk call."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(descriptor, SMALL_IO_BLOCK):
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def writeNewFile(path: str, data: bytes | memoryview) -> None:
    """Write ``data`` as the whole of file ``path`` (created or emptied) with one open and one close,
    for the same reason as ``readWholeFile``; OSError when it cannot."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def hasBadSegment(name: str) -> bool:
    """True when the '/'-separated ``name`` has an empty, ``.`` or ``..`` segment (it would map to another name)."""
    return any(segment in ("", ".", "..") for segment in name.split("/"))


def localTarget(folder: str, relative: str) -> tuple[str, str]:
    """(path of ``relative`` inside ``folder``, '') or ('', why the name would not stay inside).

    ``relative`` comes from a storage listing, which another tool may have written:
    absolute names, empty, ``.`` or ``..`` segments, backslashes and control
    characters are refused, and the result must stay below ``folder``.
    """
    if not relative or relative.startswith("/"):
        return "", f"stored name {relative!r} is empty or absolute"
    if CONTROL_CHARACTERS.search(relative) or "\\" in relative:
        return "", f"stored name {relative!r} holds control characters or a backslash"
    if hasBadSegment(relative):
        return "", f"stored name {relative!r} has an empty, '.' or '..' segment"
    top = os.path.abspath(folder)
    target = os.path.abspath(os.path.join(top, *relative.split("/")))
    if os.path.commonpath([top, target]) != top or target == top:
        return "", f"stored name {relative!r} leads outside {top}"
    return target, ""

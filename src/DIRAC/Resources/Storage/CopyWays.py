"""The ways one storage element copies files from another without a local file.

Two ways, tried in this order for each file:

* **server-side copy**: both plugins are on one S3 service (the destination
  plugin's ``canCopyServerSideFrom(source)``); ``copyServerSide`` asks the
  service to copy, no byte passes through this client;
* **streamed copy**: ``copyStreamed`` feeds the source plugin's reads into the
  destination plugin's write (any pair of plugins: S3 to S3, S3 to File, File to S3).

Both take ``items = {lfn: {'Size': int, 'Checksum': 'adler32 hex'}}`` (the
catalog's values) and answer per file: ``S_OK(size)`` when the destination
holds exactly those bytes, ``S_ERROR(EPROTONOSUPPORT, ...)`` when that way
cannot copy the file (nothing was left at the destination: the next way is
tried), any other ``S_ERROR`` for a real failure, after which the way has
already removed what it made. A real failure is final for that file here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK, isReturnStructure

SERVER_SIDE = "server-side copy"
STREAMED = "streamed copy"


def _serverSide(destination: Any, source: Any, items: dict) -> dict | None:
    """The server-side copy's answers, or None when these two plugins are not on one S3 service."""
    canCopy = getattr(destination, "canCopyServerSideFrom", None)
    if canCopy is None or not canCopy(source):
        return None
    return destination.copyServerSide(source, items)


def _streamed(destination: Any, source: Any, items: dict) -> dict | None:
    """The streamed copy's answers, or None when the destination plugin cannot stream."""
    copy = getattr(destination, "copyStreamed", None)
    return None if copy is None else copy(source, items)


WAYS: tuple[tuple[str, Callable[[Any, Any, dict], dict | None]], ...] = (
    (SERVER_SIDE, _serverSide),
    (STREAMED, _streamed),
)


def _answers(way: Callable, destination: Any, source: Any, items: dict) -> dict | None:
    """``way``'s per-file answers; a plugin that raises or answers badly fails every file it was given."""
    try:
        answers = way(destination, source, items)
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must become per-file failures, not a traceback
        return dict.fromkeys(items, S_ERROR(DErrno.EEEXCEPTION, f"{type(exc).__name__}: {exc}"))
    if answers is None:
        return None
    if not isinstance(answers, dict):
        return dict.fromkeys(items, S_ERROR(DErrno.EIO, f"unexpected answer {str(answers)[:200]}"))
    return {
        lfn: answers[lfn] if isReturnStructure(answers.get(lfn)) else S_ERROR(DErrno.EIO, "no answer for this file")
        for lfn in items
    }


def copyByTheWays(destinations: list, sources: list, items: dict) -> dict[str, dict]:
    """Copy checked ``items`` (``StreamedCopy.checkCopyItems``) from the ``sources`` plugins into ``destinations``.

    Per file: ``S_OK({'Size': int, 'Way': SERVER_SIDE | STREAMED})``, a real
    failure (an S_ERROR that also names its ``'Way'``: after a lost answer the
    copy may be there), or ``S_ERROR(EPROTONOSUPPORT)`` listing why no way could copy it.
    Plugins are tried in preference order, each way over every pair before the next way.
    """
    results: dict[str, dict] = {}
    pending = dict(items)
    reasons: dict[str, list[str]] = {lfn: [] for lfn in items}
    for wayName, way in WAYS:
        for destination in destinations:
            for source in sources:
                if not pending:
                    return results
                answers = _answers(way, destination, source, pending)
                if answers is None:
                    continue
                pair = f"{wayName} {source.pluginName} -> {destination.pluginName}"
                for lfn, answer in answers.items():
                    if answer["OK"]:
                        results[lfn] = S_OK({"Size": answer["Value"], "Way": wayName})
                    elif DErrno.cmpError(answer, DErrno.EPROTONOSUPPORT):
                        reasons[lfn].append(f"{pair}: {answer['Message']}")
                        continue
                    else:
                        results[lfn] = {**answer, "Message": f"{pair}: {answer['Message']}", "Way": wayName}
                    del pending[lfn]
    for lfn in pending:
        why = "; ".join(reasons[lfn]) or "no plugin pair offers a server-side or streamed copy"
        results[lfn] = S_ERROR(DErrno.EPROTONOSUPPORT, f"no direct way can copy {lfn}: {why}")
    return results

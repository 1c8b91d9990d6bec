"""What every ``dirac-dms-*`` command shares: LFN arguments, start-up, bulk calls and result lines.

A command is a parser plus one function ``action(args, dataManager) -> result``
(a bulk ``S_OK({'Successful', 'Failed'})`` or S_ERROR) and a ``describe`` that
turns one successful value into text. ``runCommand`` does the rest: parse,
``DIRAC.initialize()``, call, print one line per LFN (``OK <lfn> <detail>`` or
``FAILED <lfn> <reason>``) and return the exit code: 0 when everything
succeeded, 1 when an LFN failed, 2 when the whole call failed. Every printed
LFN, detail and reason goes through ``printable``: a name holding a newline or
a terminal escape cannot print a second, forged line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import DIRAC
from DIRAC.Core.Utilities.ReturnValues import S_OK
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import reasonText

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_ERROR = 0, 1, 2
#: Bulk calls are cut into chunks of this many LFNs when a progress bar is shown.
CHUNK = 50

LFN_HELP = "Logical File Name, or a local file listing LFNs (one per line)"


def printable(text: object) -> str:
    """``text`` with every non-printable character (newline, tab, escape, other controls and
    Unicode separators) written as its Python escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def makeDataManager() -> DataManager:
    """The DataManager the commands use (the configured catalogs)."""
    return DataManager()


def readLFNs(items: Iterable[str]) -> list[str]:
    """The LFNs named by command-line items: an item that is an existing local file is read as a list.

    In a list file, the first word of each non-empty line that does not start
    with ``#`` is an LFN. Duplicates are dropped, order is kept. A list that
    cannot be read ends the command (exit code 2) with the reason.
    """
    lfns: list[str] = []
    for item in items:
        if not os.path.isfile(item):
            lfns.append(item)
            continue
        try:
            with open(item, encoding="utf-8") as handle:
                lfns.extend(line.split()[0] for line in handle if line.strip() and not line.lstrip().startswith("#"))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"ERROR: cannot read the LFN list {item}: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_ERROR) from exc
    return list(dict.fromkeys(lfns))


def makeParser(prog: str, description: str, epilog: str = "", usage: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with DIRAC's common ``-d/--debug`` option."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        usage=usage,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-d", "--debug", action="store_true", help="show debug messages")
    return parser


def bulkInChunks(
    call: Callable[[list[str]], dict],
    lfns: list[str],
    label: str = "",
    progress: bool | None = None,
    workers: int = 1,
    chunk: int = CHUNK,
    describeDone: Callable[[dict], str] | None = None,
) -> dict:
    """``call(lfns)`` for many LFNs, in chunks behind one progress bar (default: when stderr is a terminal).

    With ``workers`` > 1 the chunks run that many at a time (always cut, even
    without a bar), and the bar counts files as each chunk ends;
    ``describeDone(successful so far)`` is shown beside it (e.g. bytes and rate).
    When every chunk's call fails as a whole, that S_ERROR is the answer.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    if not lfns or (workers <= 1 and (len(lfns) <= chunk or not progress)):
        return call(lfns)  # one call answers an empty list too, as a single bulk call would
    chunks = [lfns[start : start + chunk] for start in range(0, len(lfns), chunk)]
    successful: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    errors: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(lfns), desc=label, unit="file", file=sys.stderr)

    def collect(part: list[str], result: dict) -> None:
        if not result["OK"]:
            errors.append(result)
            failed.update(dict.fromkeys(part, result["Message"]))
        else:
            successful.update(result["Value"]["Successful"])
            failed.update(result["Value"]["Failed"])
        if bar is not None:
            if describeDone:
                bar.set_postfix_str(describeDone(successful), refresh=False)
            bar.update(len(part))

    try:
        if workers <= 1:
            for part in chunks:
                collect(part, call(part))
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(chunks)) or 1) as pool:
                running = {pool.submit(call, part): part for part in chunks}
                for done in as_completed(running):
                    collect(running[done], done.result())
    finally:
        if bar is not None:
            bar.close()
    if len(errors) == len(chunks):
        return errors[0]  # the whole call failed every time (an unknown SE): nothing was done
    return S_OK({"Successful": successful, "Failed": failed})


def report(result: dict, describe: Callable[[Any], str], order: Iterable[str] = (), bare: bool = False) -> int:
    """Print one line per LFN of a bulk result (in ``order`` first) and return the exit code.

    With ``bare`` a success line is just the detail (e.g. a URL to hand to curl)
    and failures go to standard error.
    """
    if not result.get("OK"):
        print(f"ERROR: {printable(result.get('Message', 'unknown error'))}", file=sys.stderr)
        return EXIT_ERROR
    successful = result["Value"].get("Successful", {})
    failed = result["Value"].get("Failed", {})
    for lfn in dict.fromkeys([*order, *successful, *failed]):
        if lfn in failed:
            line = f"FAILED {printable(lfn)} {printable(reasonText(failed[lfn]))}"
            print(line, file=sys.stderr if bare else sys.stdout)
        elif bare:
            print(printable(describe(successful[lfn])))
        elif lfn in successful:
            print(f"OK {printable(lfn)} {printable(describe(successful[lfn]))}".rstrip())
    return EXIT_FAILED_ITEMS if failed else EXIT_OK


def runCommand(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    action: Callable[[argparse.Namespace, DataManager], dict],
    describe: Callable[[Any], str],
    order: Callable[[argparse.Namespace], Iterable[str]] = lambda _args: (),
    bare: bool = False,
    summarize: Callable[[argparse.Namespace, dict], str] | None = None,
) -> int:
    """Parse, initialise DIRAC, run ``action`` and report; the process exit code.

    ``summarize(args, value)`` gives a last line for standard error after the
    per-LFN lines (when the call as a whole succeeded).
    """
    args = parser.parse_args(argv)
    started = DIRAC.initialize(log_level="DEBUG" if args.debug else None)
    if not started["OK"]:
        print(f"ERROR: cannot load the configuration: {started['Message']}", file=sys.stderr)
        return EXIT_ERROR
    result = action(args, makeDataManager())
    code = report(result, describe, order(args), bare)
    if summarize is not None and result["OK"]:
        print(printable(summarize(args, result["Value"])), file=sys.stderr)
    return code

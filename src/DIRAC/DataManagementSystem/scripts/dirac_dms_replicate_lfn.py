"""dirac-dms-replicate-lfn: copy files to another storage element and register the new replicas."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter

from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.scripts import _common

USAGE = "%(prog)s [-h] [-d] [-j N] [--progress | --no-progress] LFN DEST_SE [SOURCE_SE] [LOCAL_CACHE]"
EPILOG = """ways of copying (chosen per file, the first that can):
  server-side copy  both SEs on one S3 service: the service copies, no byte passes through this machine
  streamed copy     other services, or S3 <-> File: the source is read straight into the destination,
                    no local file, bounded memory
  local copy        through a temporary file under LOCAL_CACHE (the old way): used when LOCAL_CACHE is
                    given, or when neither other way can copy the file
  Every copy is checked against the catalog's size and adler32 before the replica is registered; a
  copy that does not match is removed and nothing is registered.

output:
  standard output, one line per LFN:
    OK <LFN> <way>, <MB> MB in <s> s, <MB/s> MB/s
    OK <LFN> already there, nothing copied
    FAILED <LFN> <reason, saying what was left at the destination and what to run>
  standard error: one progress bar for a list (files done, MB/s), then a summary line.

exit status:
  0  every LFN is at DEST_SE and registered
  1  some LFN failed: run the same command again (LFNs already at DEST_SE are skipped)
  2  nothing was done (unknown SE, unreadable list, no configuration)
"""
#: Bulk calls running at once for a list, and the most LFNs in one call.
DEFAULT_PARALLEL = 4
MB = 1_000_000


def _rate(size: int, seconds: float) -> str:
    """``<MB> MB in <s> s, <MB/s> MB/s``."""
    speed = f"{size / MB / seconds:.1f} MB/s" if seconds > 0 else "- MB/s"
    return f"{size / MB:.2f} MB in {seconds:.2f} s, {speed}"


def _describe(value: dict) -> str:
    if value.get("transfer", "").startswith("none"):
        return "already there, nothing copied"
    return f"{value.get('transfer', '')}, {_rate(value.get('bytes', 0), value.get('replicate', 0.0))}"


def _copiedBytes(successful: dict) -> int:
    return sum(value.get("bytes", 0) for value in successful.values() if isinstance(value, dict))


def _parallel(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 32:
        raise argparse.ArgumentTypeError("must be between 1 and 32")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-replicate-lfn", __doc__.splitlines()[0], EPILOG, usage=USAGE)
    parser.add_argument("lfn", metavar="LFN", help=_common.LFN_HELP)
    parser.add_argument("destSE", metavar="DEST_SE", help="destination storage element")
    parser.add_argument(
        "sourceSE", metavar="SOURCE_SE", nargs="?", default="", help="copy only from this SE (default: any replica)"
    )
    parser.add_argument(
        "localCache", metavar="LOCAL_CACHE", nargs="?", default="", help="folder for a local copy: forces the old way"
    )
    parser.add_argument(
        "-j",
        "--parallel",
        metavar="N",
        type=_parallel,
        default=DEFAULT_PARALLEL,
        help="bulk calls at once for a list (1-32)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal)",
    )
    started = time.monotonic()

    def replicate(args: argparse.Namespace, dm: DataManager) -> dict:
        lfns = _common.readLFNs([args.lfn])
        chunk = max(1, min(_common.CHUNK, math.ceil(len(lfns) / (2 * args.parallel))))
        return _common.bulkInChunks(
            lambda part: dm.replicateAndRegister(part, args.destSE, sourceSE=args.sourceSE, localCache=args.localCache),
            lfns,
            f"replicate to {args.destSE}",
            progress=args.progress,
            workers=args.parallel,
            chunk=chunk,
            describeDone=lambda done: f"{_copiedBytes(done) / MB / max(time.monotonic() - started, 1e-9):.1f} MB/s",
        )

    def summarize(args: argparse.Namespace, value: dict) -> str:
        successful, failed = value["Successful"], value["Failed"]
        ways = Counter(item.get("transfer", "") for item in successful.values() if isinstance(item, dict))
        byWay = ", ".join(f"{count} {way}" for way, count in sorted(ways.items()))
        line = (
            f"replicated {len(successful)} of {len(successful) + len(failed)} LFNs to {args.destSE}"
            f" ({byWay or 'none'}): {_rate(_copiedBytes(successful), time.monotonic() - started)}"
        )
        if failed:
            line += f"; {len(failed)} failed: fix the cause above, then run the same command again"
        return line

    return _common.runCommand(
        parser,
        argv,
        replicate,
        _describe,
        lambda args: _common.readLFNs([args.lfn]),
        summarize=summarize,
    )


if __name__ == "__main__":
    sys.exit(main())

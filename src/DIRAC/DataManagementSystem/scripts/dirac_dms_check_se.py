"""dirac-dms-check-se: compare a storage element with the file catalog under a directory.

Reports dark objects (stored, not registered at that SE), lost replicas
(registered, not stored), size or checksum mismatches and unfinished multipart
uploads older than --age. With --fix it shows what it will do, then removes the
dark objects and aborts the stale uploads; lost replicas and mismatches are only
reported. One SE listing and one catalog query per directory.

Exit code: 0 when SE and catalog agree, 1 when something was found (or could not
be fixed), 2 when the check could not run.
"""

from __future__ import annotations

import sys
from typing import TextIO

import DIRAC
from DIRAC.DataManagementSystem.Client.StorageConsistency import Report, StorageConsistency
from DIRAC.DataManagementSystem.scripts import _common


def makeChecker(seName: str) -> StorageConsistency:
    """The checker the command uses (the configured catalogs)."""
    return StorageConsistency(seName)


def _say(line: str, stream: TextIO | None = None) -> None:
    """Print one line with non-printable characters escaped (``_common.printable``): an object
    name holding a newline or a terminal escape cannot forge a second line."""
    print(_common.printable(line), file=stream or sys.stdout)


def _show(report: Report, minAge: float) -> None:
    _say(f"checked {report.directories} directories, {report.files} objects")
    for lfn in report.dark:
        _say(f"DARK {lfn}")
    for lfn in report.recentDark:
        _say(f"RECENT {lfn} (stored less than {minAge:g} s ago, maybe an upload in progress: left alone)")
    for lfn in report.lost:
        _say(f"LOST {lfn}")
    for lfn, reason in sorted(report.mismatches.items()):
        _say(f"MISMATCH {lfn} {reason}")
    for upload in report.staleUploads:
        _say(f"UPLOAD {upload['LFN']} {upload['UploadId']} started {upload['Initiated']}")
    for problem in report.problems:
        _say(f"ERROR {problem}")


def _fix(checker: StorageConsistency, report: Report, assumeYes: bool) -> int:
    if not report.dark and not report.staleUploads:
        print("nothing to fix: no dark object, no stale upload")
        return _common.EXIT_FAILED_ITEMS if not report.clean else _common.EXIT_OK
    print(f"--fix will remove {len(report.dark)} dark object(s) and abort {len(report.staleUploads)} upload(s)")
    if not assumeYes and sys.stdin.isatty() and input("go on? [y/N] ").strip().lower() not in ("y", "yes"):
        print("nothing done")
        return _common.EXIT_FAILED_ITEMS
    result = checker.fix(report)
    if not result["OK"]:
        _say(f"ERROR: {result['Message']}", sys.stderr)
        return _common.EXIT_ERROR
    done = result["Value"]
    for lfn in done["Removed"]:
        _say(f"REMOVED {lfn}")
    for upload in done["Aborted"]:
        _say(f"ABORTED {upload}")
    for lfn, why in done["Kept"].items():
        _say(f"KEPT {lfn} {why}")
    for item, reason in done["Failed"].items():
        _say(f"FAILED {item} {reason}")
    stillWrong = done["Kept"] or done["Failed"] or report.lost or report.mismatches or report.problems
    return _common.EXIT_FAILED_ITEMS if stillWrong else _common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-check-se", __doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("se", metavar="SE", help="storage element to check")
    parser.add_argument("directory", metavar="DIR", help="LFN directory to compare (recursively)")
    parser.add_argument(
        "--age",
        type=float,
        default=86400,
        help="seconds: younger objects and uploads may be in progress and are left alone (default 86400)",
    )
    parser.add_argument("--checksum", action="store_true", help="also compare adler32 (one request per file)")
    parser.add_argument("--fix", action="store_true", help="remove dark objects and abort stale uploads")
    parser.add_argument("-y", "--yes", action="store_true", help="with --fix, do not ask on a terminal")
    args = parser.parse_args(argv)
    if args.age < 0:
        parser.error("--age must be >= 0")
    started = DIRAC.initialize(log_level="DEBUG" if args.debug else None)
    if not started["OK"]:
        print(f"ERROR: cannot load the configuration: {started['Message']}", file=sys.stderr)
        return _common.EXIT_ERROR
    checker = makeChecker(args.se)
    result = checker.check(args.directory, minAge=args.age, checksums=args.checksum)
    if not result["OK"]:
        _say(f"ERROR: {result['Message']}", sys.stderr)
        return _common.EXIT_ERROR
    report = result["Value"]
    _show(report, args.age)
    if args.fix:
        return _fix(checker, report, args.yes)
    return _common.EXIT_OK if report.clean else _common.EXIT_FAILED_ITEMS


if __name__ == "__main__":
    sys.exit(main())

"""dirac-dms-remove-files: remove files: every replica from storage, then the catalog entry."""

from __future__ import annotations

import sys

from DIRAC.DataManagementSystem.scripts import _common


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-remove-files", __doc__.splitlines()[0])
    parser.add_argument("lfns", nargs="+", metavar="LFN", help=_common.LFN_HELP)
    return _common.runCommand(
        parser,
        argv,
        lambda args, dm: _common.bulkInChunks(dm.removeFile, _common.readLFNs(args.lfns), "remove"),
        lambda _value: "removed",
        lambda args: _common.readLFNs(args.lfns),
    )


if __name__ == "__main__":
    sys.exit(main())

"""dirac-dms-get-file: download files from the first replica that works, checked against the catalog."""

from __future__ import annotations

import sys

from DIRAC.DataManagementSystem.scripts import _common


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-get-file", __doc__.splitlines()[0])
    parser.add_argument("lfns", nargs="+", metavar="LFN", help=_common.LFN_HELP)
    parser.add_argument(
        "-D", "--Dir", dest="directory", metavar="DIR", default="", help="destination folder (default: here)"
    )
    return _common.runCommand(
        parser,
        argv,
        lambda args, dm: _common.bulkInChunks(
            lambda lfns: dm.getFile(lfns, destinationDir=args.directory), _common.readLFNs(args.lfns), "download"
        ),
        lambda path: f"-> {path}",
        lambda args: _common.readLFNs(args.lfns),
    )


if __name__ == "__main__":
    sys.exit(main())

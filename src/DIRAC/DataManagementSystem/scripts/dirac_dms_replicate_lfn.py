"""dirac-dms-replicate-lfn: copy files to another storage element and register the new replicas."""

from __future__ import annotations

import sys

from DIRAC.DataManagementSystem.scripts import _common


def _describe(value: dict) -> str:
    return f"replicated ({value.get('transfer', '')}, {value.get('replicate', 0.0):.2f} s copy)"


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-replicate-lfn", __doc__.splitlines()[0])
    parser.add_argument("lfn", metavar="LFN", help=_common.LFN_HELP)
    parser.add_argument("destSE", metavar="DEST_SE", help="destination storage element")
    parser.add_argument("sourceSE", metavar="SOURCE_SE", nargs="?", default="", help="source storage element")
    parser.add_argument("localCache", metavar="LOCAL_CACHE", nargs="?", default="", help="folder for the local copy")
    return _common.runCommand(
        parser,
        argv,
        lambda args, dm: _common.bulkInChunks(
            lambda lfns: dm.replicateAndRegister(lfns, args.destSE, sourceSE=args.sourceSE, localCache=args.localCache),
            _common.readLFNs([args.lfn]),
            "replicate",
        ),
        _describe,
        lambda args: _common.readLFNs([args.lfn]),
    )


if __name__ == "__main__":
    sys.exit(main())

"""dirac-dms-lfn-replicas: show the replicas of files (storage element and URL)."""

from __future__ import annotations

import sys

from DIRAC.DataManagementSystem.scripts import _common


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-lfn-replicas", __doc__.splitlines()[0])
    parser.add_argument("lfns", nargs="+", metavar="LFN", help=_common.LFN_HELP)
    return _common.runCommand(
        parser,
        argv,
        lambda args, dm: _common.bulkInChunks(dm.getReplicas, _common.readLFNs(args.lfns), "replicas"),
        lambda replicas: " ".join(f"{se}={url}" for se, url in replicas.items()) or "(no replica)",
        lambda args: _common.readLFNs(args.lfns),
    )


if __name__ == "__main__":
    sys.exit(main())

"""dirac-dms-remove-replicas: remove the replicas of files at storage elements (never the last one)."""

from __future__ import annotations

import argparse
import sys

from DIRAC.Core.Utilities.ReturnValues import S_OK
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import reasonText
from DIRAC.DataManagementSystem.scripts import _common


def _remove(args: argparse.Namespace, dm: DataManager) -> dict:
    """One removeReplica call per SE; an LFN succeeds when every SE succeeded."""
    lfns = _common.readLFNs([args.lfn])
    done: dict[str, list[str]] = {lfn: [] for lfn in lfns}
    failed: dict[str, list[str]] = {}
    for se in args.ses:
        result = _common.bulkInChunks(lambda chunk, se=se: dm.removeReplica(se, chunk), lfns, f"remove at {se}")
        if not result["OK"]:
            for lfn in lfns:
                failed.setdefault(lfn, []).append(f"{se}: {result['Message']}")
            continue
        for lfn in result["Value"]["Successful"]:
            done.setdefault(lfn, []).append(se)
        for lfn, reason in result["Value"]["Failed"].items():
            failed.setdefault(lfn, []).append(f"{se}: {reasonText(reason)}")
    successful = {lfn: ses for lfn, ses in done.items() if lfn not in failed}
    return S_OK({"Successful": successful, "Failed": {lfn: " | ".join(why) for lfn, why in failed.items()}})


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-remove-replicas", __doc__.splitlines()[0])
    parser.add_argument("lfn", metavar="LFN", help=_common.LFN_HELP)
    parser.add_argument("ses", nargs="+", metavar="SE", help="storage element(s) to remove the replica from")
    return _common.runCommand(
        parser,
        argv,
        _remove,
        lambda ses: f"replica removed from {', '.join(ses)}",
        lambda args: _common.readLFNs([args.lfn]),
    )


if __name__ == "__main__":
    sys.exit(main())

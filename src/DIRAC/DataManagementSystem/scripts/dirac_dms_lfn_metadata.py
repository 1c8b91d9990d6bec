"""dirac-dms-lfn-metadata: show the catalog metadata of files (size, checksum, GUID, owner, ...)."""

from __future__ import annotations

import argparse
import sys

from DIRAC.Core.Utilities.ReturnValues import S_OK
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import splitBulk, splitLFNs
from DIRAC.DataManagementSystem.scripts import _common

SHOWN = ("Size", "Checksum", "ChecksumType", "GUID", "Owner", "OwnerGroup", "Mode", "Status", "CreationDate")


def _metadata(args: argparse.Namespace, dm: DataManager) -> dict:
    parsed = splitLFNs(_common.readLFNs(args.lfns))
    if not parsed["OK"]:
        return parsed
    lfns, failed = parsed["Value"]

    def lookup(chunk: list[str]) -> dict:
        successful, errors = splitBulk(dm.fileCatalog.getFileMetadata(chunk), chunk, "catalog getFileMetadata")
        return S_OK({"Successful": successful, "Failed": errors})

    result = _common.bulkInChunks(lookup, lfns, "metadata")
    result["Value"]["Failed"].update(failed)
    return result


def _describe(meta: dict) -> str:
    def show(key: str) -> str:
        value = meta[key]
        return oct(value) if key == "Mode" and isinstance(value, int) else str(value)

    return " ".join(f"{key}={show(key)}" for key in SHOWN if key in meta)


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-lfn-metadata", __doc__.splitlines()[0])
    parser.add_argument("lfns", nargs="+", metavar="LFN", help=_common.LFN_HELP)
    return _common.runCommand(parser, argv, _metadata, _describe, lambda args: _common.readLFNs(args.lfns))


if __name__ == "__main__":
    sys.exit(main())

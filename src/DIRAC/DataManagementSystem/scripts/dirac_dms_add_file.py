"""dirac-dms-add-file: upload local files to a storage element and register them in the catalog."""

from __future__ import annotations

import argparse
import sys

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.scripts import _common

USAGE = """arguments:
  LFN FILE SE [GUID]   upload FILE to SE as LFN (GUID: optional)
  LIST                 a local file whose lines are "LFN FILE SE [GUID]"
"""


def _requests(args: argparse.Namespace) -> dict:
    """S_OK([(lfn, localFile, se, guid)]) from the command line or a list file."""
    if len(args.args) in (3, 4):
        lfn, localFile, se = args.args[:3]
        return S_OK([(lfn, localFile, se, args.args[3] if len(args.args) == 4 else None)])
    if len(args.args) != 1:
        return S_ERROR(DErrno.EINVAL, "expected LFN FILE SE [GUID], or one file listing them")
    entries = []
    try:
        with open(args.args[0], encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                words = line.split()
                if not words or words[0].startswith("#"):
                    continue
                if len(words) not in (3, 4):
                    return S_ERROR(DErrno.EINVAL, f"{args.args[0]} line {number}: expected LFN FILE SE [GUID]")
                entries.append((words[0], words[1], words[2], words[3] if len(words) == 4 else None))
    except OSError as exc:
        return S_ERROR(DErrno.ENOENT, f"cannot read the list {args.args[0]}: {exc.strerror}")
    return S_OK(entries)


def _upload(args: argparse.Namespace, dm: DataManager) -> dict:
    requests = _requests(args)
    if not requests["OK"]:
        return requests
    successful, failed = {}, {}
    bySE: dict[str, list] = {}
    for entry in requests["Value"]:
        bySE.setdefault(entry[2], []).append(entry)
    for se, entries in bySE.items():
        files = {lfn: localFile for lfn, localFile, _se, _guid in entries}
        guids = {lfn: guid for lfn, _file, _se, guid in entries if guid}
        result = dm.putAndRegister(files, None, se, guid=guids)
        if not result["OK"]:
            failed.update(dict.fromkeys(files, result["Message"]))
            continue
        successful.update({lfn: se for lfn in result["Value"]["Successful"]})
        failed.update(result["Value"]["Failed"])
    return S_OK({"Successful": successful, "Failed": failed})


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser(
        "dirac-dms-add-file", __doc__.splitlines()[0], USAGE, usage="%(prog)s [-h] [-d] (LFN FILE SE [GUID] | LIST)"
    )
    parser.add_argument("args", nargs="+", metavar="ARG", help="see below")
    return _common.runCommand(parser, argv, _upload, lambda se: f"uploaded to {se} and registered")


if __name__ == "__main__":
    sys.exit(main())

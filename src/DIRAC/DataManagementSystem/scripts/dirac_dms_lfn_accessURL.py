"""dirac-dms-lfn-accessURL: URLs to read replicas at a storage element (S3 over http(s): presigned, 24 h)."""

from __future__ import annotations

import sys

from DIRAC.DataManagementSystem.scripts import _common

#: without a protocol: a URL plain HTTP clients can use when the SE offers one
FOR_CURL = ["https", "http", "file", "s3"]


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser("dirac-dms-lfn-accessURL", __doc__.splitlines()[0])
    parser.add_argument("lfn", metavar="LFN", help=_common.LFN_HELP)
    parser.add_argument("se", metavar="SE", help="storage element holding the replica")
    parser.add_argument(
        "protocol",
        metavar="PROTOCOL",
        nargs="?",
        default="",
        help="e.g. https, http, s3, file (default: https or http when the SE offers them, for curl)",
    )
    return _common.runCommand(
        parser,
        argv,
        lambda args, dm: _common.bulkInChunks(
            lambda lfns: dm.getReplicaAccessUrl(lfns, args.se, protocol=[args.protocol] if args.protocol else FOR_CURL),
            _common.readLFNs([args.lfn]),
            "URLs",
        ),
        str,
        lambda args: _common.readLFNs([args.lfn]),
        bare=True,  # one URL per line, usable as is by curl; failures on stderr
    )


if __name__ == "__main__":
    sys.exit(main())

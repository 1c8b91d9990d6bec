"""dirac-proxy-info: show who a proxy belongs to, its group and how long it is valid."""

from __future__ import annotations

import argparse
import sys

import DIRAC
from DIRAC.Core.Security.ProxyInfo import formatProxyInfoAsString, getProxyInfo


def main(argv: list[str] | None = None) -> int:
    """Print the proxy's details; 1 when there is no proxy, it cannot be read, or it has expired."""
    parser = argparse.ArgumentParser(prog="dirac-proxy-info", description="Print information about a proxy.")
    parser.add_argument("-f", "--file", help="proxy file (default $X509_USER_PROXY or /tmp/x509up_u<uid>)")
    args = parser.parse_args(argv)

    result = DIRAC.initialize()
    if not result["OK"]:
        print(f"ERROR: {result['Message']}", file=sys.stderr)
        return 1
    result = getProxyInfo(args.file or False)
    if not result["OK"]:
        print(f"ERROR: {result['Message']}", file=sys.stderr)
        return 1
    print(formatProxyInfoAsString(result["Value"]))
    if result["Value"]["secondsLeft"] <= 0:
        print("ERROR: the proxy has expired", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

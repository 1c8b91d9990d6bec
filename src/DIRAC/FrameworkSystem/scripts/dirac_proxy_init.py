"""dirac-proxy-init: make a proxy of your certificate carrying a DIRAC group."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile

import DIRAC
from DIRAC.Core.Security.ProxyGeneration import DEFAULT_LIFETIME, generateProxy, loadUserCredentials, parseLifetime
from DIRAC.Core.Security.ProxyInfo import formatProxyInfoAsString
from DIRAC.Core.Security.X509Chain import X509Chain

BOOTSTRAP_SECONDS = 600


def main(argv: list[str] | None = None) -> int:
    """Parse the options, make the proxy, print what was made; 1 on any error."""
    parser = argparse.ArgumentParser(
        prog="dirac-proxy-init", description="Generate an RFC 3820 proxy of your certificate with a DIRAC group."
    )
    parser.add_argument("-g", "--group", help="DIRAC group (default: your default group in the registry)")
    parser.add_argument("-v", "--valid", default=None, metavar="HH:MM", help="validity (default 24:00)")
    parser.add_argument("--cert", help="user certificate (default $X509_USER_CERT or ~/.globus/usercert.pem)")
    parser.add_argument("--key", help="user key (default $X509_USER_KEY or ~/.globus/userkey.pem)")
    parser.add_argument("--out", help="proxy file (default $X509_USER_PROXY or /tmp/x509up_u<uid>)")
    parser.add_argument("--pwstdin", action="store_true", help="read the key password from stdin")
    args = parser.parse_args(argv)

    lifetime = DEFAULT_LIFETIME
    if args.valid:
        result = parseLifetime(args.valid)
        if not result["OK"]:
            return _fail(result["Message"])
        lifetime = result["Value"]
    password = sys.stdin.readline().rstrip("\n") if args.pwstdin else None
    credentials = loadUserCredentials(args.cert, args.key, password)
    if not credentials["OK"] and password is None and sys.stdin.isatty() and "password" in credentials["Message"]:
        password = getpass.getpass("Enter the password of your certificate key: ")
        credentials = loadUserCredentials(args.cert, args.key, password)
    if not credentials["OK"]:
        return _fail(credentials["Message"])
    result = _initializeAs(credentials["Value"])
    if not result["OK"]:
        return _fail(result["Message"])
    result = generateProxy(args.cert, args.key, args.group, lifetime, args.out, password)
    if not result["OK"]:
        return _fail(result["Message"])
    print(f"Proxy generated for group {result['Value'].get('group')}:")
    print(formatProxyInfoAsString(result["Value"]))
    return 0


def _initializeAs(chain: X509Chain) -> dict:
    """Load the configuration as the certificate's owner.

    The registry (which groups the user has) may come from the configuration
    server, which only answers authenticated callers, and there is no proxy yet:
    a ten-minute proxy without group, in a private temporary folder, opens that door.
    """
    with tempfile.TemporaryDirectory(prefix="dirac-proxy-init-") as folder:
        bootstrap = os.path.join(folder, "bootstrap.pem")
        made = chain.generateProxyToFile(bootstrap, BOOTSTRAP_SECONDS)
        if not made["OK"]:
            return made
        previous = os.environ.get("X509_USER_PROXY")
        os.environ["X509_USER_PROXY"] = bootstrap
        try:
            return DIRAC.initialize()
        finally:
            if previous is None:
                os.environ.pop("X509_USER_PROXY", None)
            else:
                os.environ["X509_USER_PROXY"] = previous


def _fail(message: str) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

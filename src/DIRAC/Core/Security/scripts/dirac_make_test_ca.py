"""dirac-make-test-ca: a throw-away CA with host and user certificates, for tests and demos only."""

from __future__ import annotations

import argparse
import sys

from DIRAC.Core.Security.TestCA import DEFAULT_CA_NAME, TestCA, TestCAError

DESCRIPTION = (
    "Create a test certificate authority in DIR: DIR/certificates (CA dir for X509_CERT_DIR), "
    "DIR/hosts/<name>/hostcert.pem+hostkey.pem, DIR/users/<name>/usercert.pem+userkey.pem. "
    "FOR TESTS AND DEMOS, NOT PRODUCTION: keys are unencrypted and the CA key sits next to its certificates."
)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, make the CA and the requested certificates, print their paths."""
    parser = argparse.ArgumentParser(prog="dirac-make-test-ca", description=DESCRIPTION)
    parser.add_argument("folder", metavar="DIR", help="folder to create (or extend) the test CA in")
    parser.add_argument("--host", action="append", default=[], metavar="NAME", help="issue a host certificate")
    parser.add_argument("--user", action="append", default=[], metavar="NAME", help="issue a user certificate")
    parser.add_argument("--days", type=float, default=365, help="validity of issued certificates (default 365)")
    parser.add_argument("--ca-name", default=DEFAULT_CA_NAME, help=f"CN of the CA (default {DEFAULT_CA_NAME!r})")
    args = parser.parse_args(argv)

    ca = TestCA(args.folder, caName=args.ca_name, validityDays=args.days)
    try:
        certPath, _ = ca.createCA()
        print(f"CA certificate: {certPath}")
        print(f"CA directory (X509_CERT_DIR): {ca.caDir}")
        for name in args.host:
            hostCert, hostKey = ca.createHost(name)
            print(f"host {name}: {hostCert} {hostKey}")
        for name in args.user:
            userCert, userKey, dn = ca.createUser(name)
            print(f"user {name}: {userCert} {userKey} DN {dn}")
    except TestCAError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

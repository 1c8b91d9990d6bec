"""``dirac-admin-sysadmin-cli -H HOST [-p PORT]``: administer the services of a DIRAC host.

Interactive shell when standard input is a terminal; otherwise (or with ``-c``) the commands
are read one per line and echoed, and the exit code is 1 when one of them failed::

    printf 'install service DataManagement S3Gateway\\nstatus\\n' | dirac-admin-sysadmin-cli -H localhost

Credentials: the proxy named by ``--proxy`` or ``X509_USER_PROXY`` when given (its group must
hold ServiceAdministrator), otherwise what the configuration says (a server's local dirac.cfg
has ``UseServerCertificate = yes``: the host's own certificate, which the bootstrap made an
administrator). Exit codes: 0 all commands succeeded, 1 a command failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dirac-admin-sysadmin-cli", description="Install and control the DIRAC services of a host."
    )
    parser.add_argument("-H", "--host", default=None, help="the host to administer (default: this host)")
    parser.add_argument(
        "-p", "--port", type=int, default=None, help="its SystemAdministrator port (default: configured)"
    )
    parser.add_argument("-c", "--command", action="append", default=[], help="run this command (repeatable) and exit")
    parser.add_argument(
        "--proxy", default=None, help="proxy file to use (default: X509_USER_PROXY, else configuration)"
    )
    parser.add_argument("-o", "--log-level", default=None, help="log level (ERROR, WARN, INFO, DEBUG...)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dirac-admin-sysadmin-cli``; returns the exit code."""
    args = _parser().parse_args(argv)

    import DIRAC
    from DIRAC.ConfigurationSystem.Client.Config import gConfig
    from DIRAC.ConfigurationSystem.Client.CSServerLoader import installCentralLoader
    from DIRAC.FrameworkSystem.Client.SystemAdministratorClient import SystemAdministratorClient
    from DIRAC.FrameworkSystem.Client.SystemAdministratorClientCLI import SystemAdministratorClientCLI

    installCentralLoader()
    if args.proxy:
        os.environ["X509_USER_PROXY"] = args.proxy  # also for reading the central configuration
    loaded = DIRAC.initialize(log_level=args.log_level or "ERROR")
    if not loaded["OK"]:
        print(f"WARNING: configuration: {loaded['Message']}", file=sys.stderr)
    host = args.host or gConfig.getValue("/DIRAC/Hostname", "") or "localhost"
    options = {}
    proxy = args.proxy or os.environ.get("X509_USER_PROXY")
    if proxy:
        options = {"useCertificates": False, "proxyLocation": proxy}
    client = SystemAdministratorClient(host, args.port, **options)
    cli = SystemAdministratorClientCLI(client)
    if args.command:
        return 1 if cli.runScript(args.command) else 0
    if not sys.stdin.isatty():
        return 1 if cli.runScript(sys.stdin) else 0
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        cli.cmdloop(f"DIRAC SystemAdministrator of {host} at {client.getServer()}; type help or quit")
    except KeyboardInterrupt:
        print()
    return 1 if cli.failures else 0


if __name__ == "__main__":
    sys.exit(main())

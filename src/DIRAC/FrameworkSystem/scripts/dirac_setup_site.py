"""``dirac-setup-site``: bootstrap a DIRAC server instance (configuration server + SystemAdministrator).

::

    dirac-setup-site site.cfg                       # options from a site cfg (see SiteSetup)
    dirac-setup-site --folder /opt/dirac --host diracserver.institute.tld \\
        --admin-dn "/DC=org/CN=Admin" [--port-base 9135] [--ca-dir ...] [--host-cert ... --host-key ...]
    dirac-setup-site --status /opt/dirac            # runsvdir and component status
    dirac-setup-site --stop /opt/dirac              # stop runsvdir and everything under it

Command-line options win over the site cfg. Running it again on the same folder is safe.
Exit code 0 on success, 1 on failure (the reason on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dirac-setup-site",
        description="Lay out a DIRAC instance folder, write its configuration, start runit and install "
        "Configuration/Server and Framework/SystemAdministrator. Safe to run again.",
    )
    parser.add_argument("siteCfg", nargs="?", help="site cfg file (LocalInstallation section, see the docs)")
    parser.add_argument("--folder", dest="instancePath", help="instance folder (TargetPath)")
    parser.add_argument("--host", help="host name used in the service URLs (default: this host's FQDN)")
    parser.add_argument("--listen", dest="listenAddress", help="address the services listen on (default 0.0.0.0)")
    parser.add_argument("--port-base", dest="portBase", type=int, help="first port to use (default: template ports)")
    parser.add_argument(
        "--ca-dir", dest="caLocation", help="trusted CA folder (default /etc/grid-security/certificates)"
    )
    parser.add_argument(
        "--host-cert", dest="certFile", help="host certificate (default /etc/grid-security/hostcert.pem)"
    )
    parser.add_argument("--host-key", dest="keyFile", help="host key (default /etc/grid-security/hostkey.pem)")
    parser.add_argument("--admin-dn", dest="adminDN", help="DN of the administrator's certificate")
    parser.add_argument("--admin-name", dest="adminName", help="administrator's user name (default admin)")
    parser.add_argument("--admin-group", dest="adminGroup", help="administrators' group (default dirac_admin)")
    parser.add_argument("--site", dest="siteName", help="site name (/LocalSite/Site)")
    parser.add_argument("--vo", help="virtual organisation")
    parser.add_argument("--timeout", type=float, help="seconds to wait for each service to start (default 60)")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--stop", metavar="FOLDER", help="stop runsvdir and every component of the instance")
    actions.add_argument("--status", metavar="FOLDER", help="show the status of the instance's components")
    return parser


def _printStatus(folder: str) -> int:
    from DIRAC.FrameworkSystem.Client.SiteSetup import siteStatus

    result = siteStatus(folder)
    if not result["OK"]:
        print(f"ERROR: {result['Message']}", file=sys.stderr)
        return 1
    pid = result["Value"]["RunsvdirPID"]
    print(f"runsvdir: {'pid ' + str(pid) if pid else 'not running'}")
    for name, status in sorted(result["Value"]["Components"].items()):
        print(f"  {name:40} {status['RunitStatus']:8} pid {status.get('PID', 0):<8} up {status.get('Timeup', 0)} s")
    return 0 if pid else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dirac-setup-site``; returns the exit code."""
    args = _parser().parse_args(argv)
    from DIRAC.FrameworkSystem.Client.SiteSetup import SiteOptions, loadSiteCfg, setupSite, stopSite

    if args.stop:
        result = stopSite(args.stop)
        if not result["OK"]:
            print(f"ERROR: {result['Message']}", file=sys.stderr)
            return 1
        print(f"Stopped {args.stop}: {len(result['Value'])} processes ({' '.join(map(str, result['Value']))})")
        return 0
    if args.status:
        return _printStatus(args.status)

    if args.siteCfg:
        loaded = loadSiteCfg(args.siteCfg)
        if not loaded["OK"]:
            print(f"ERROR: {loaded['Message']}", file=sys.stderr)
            return 1
        options = loaded["Value"]
    else:
        options = SiteOptions()
    options.update(**{name: getattr(args, name) for name in (
        "instancePath", "host", "listenAddress", "portBase", "caLocation", "certFile", "keyFile",
        "adminDN", "adminName", "adminGroup", "siteName", "vo", "timeout")})  # fmt: skip
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    result = setupSite(options, report=lambda text: print(f"  {text}"))
    if not result["OK"]:
        print(f"ERROR: {result['Message']}", file=sys.stderr)
        return 1
    summary = result["Value"]
    folder = summary["InstancePath"]
    print(f"""
Instance ready in {folder}
  Configuration server:  {summary["ConfigurationServer"]}
  SystemAdministrator:   {summary["SystemAdministrator"]}
  runsvdir:              pid {summary["RunsvdirPID"]} (in {folder}/runsvdir.pid)
  Local configuration:   {summary["LocalConfiguration"]}
  Client configuration:  {summary["ClientConfiguration"]} (DIRACSYSCONFIG for users)
  Central configuration: {summary["CentralConfiguration"]}
Administer it (with an administrator's proxy, or as the host with its local configuration):
  dirac-admin-sysadmin-cli -H {summary["Host"]} -p {summary["SystemAdministratorPort"]}
Status / stop:
  dirac-setup-site --status {folder}
  dirac-setup-site --stop {folder}""")
    return 0


if __name__ == "__main__":
    sys.exit(main())

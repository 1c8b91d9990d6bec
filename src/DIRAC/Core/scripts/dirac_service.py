"""``dirac-service System/Service [System/Service ...]``: run services over HTTPS.

The configuration is loaded with the host credentials (the service calls other
services as the host). The port is ``/Systems/<System>/Services/<Service>/Port`` of
the first service unless ``--port`` is given; several services share that port.
Logs go to stdout. SIGTERM or SIGINT stops the server cleanly (exit code 0).
"""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dirac-service", description="Run DIRAC services over HTTPS.")
    parser.add_argument("services", nargs="+", metavar="System/Service", help="the service(s) to run")
    parser.add_argument("--port", type=int, default=None, help="listen on this port instead of the configured Port")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--max-threads", type=int, default=None, help="size of the handler thread pool")
    parser.add_argument("-o", "--log-level", default=None, help="log level (DEBUG, VERBOSE, INFO, NOTICE, ...)")
    return parser


def _logToStdout() -> None:
    """Send DIRAC's and tornado's log records to stdout, line buffered."""
    from DIRAC.FrameworkSystem.Client.Logger import ROOT_NAME  # sets up DIRAC's log handler

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    root = logging.getLogger(ROOT_NAME)
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stdout)
    tornadoLogger = logging.getLogger("tornado")
    tornadoLogger.setLevel(logging.WARNING)
    tornadoLogger.propagate = False
    for handler in root.handlers:
        tornadoLogger.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dirac-service``; returns the exit code."""
    args = _parser().parse_args(argv)
    _logToStdout()

    import DIRAC
    from DIRAC.ConfigurationSystem.Client.CSServerLoader import installCentralLoader
    from DIRAC.FrameworkSystem.Client.Logger import gLogger

    installCentralLoader()
    result = DIRAC.initialize(log_level=args.log_level, host_credentials=True)
    if not result["OK"]:
        gLogger.fatal("Cannot load the configuration", result["Message"])
        return 1

    from DIRAC.Core.Tornado.Server.TornadoServer import TornadoServer

    server = TornadoServer(args.services, port=args.port, host=args.host, maxThreads=args.max_threads)
    result = server.initialize()
    if not result["OK"]:
        gLogger.fatal("Cannot start", f"{' '.join(args.services)}: {result['Message']}")
        return 1
    result = server.startTornado()
    if not result["OK"]:
        gLogger.fatal("Server error", result["Message"])
        return 1
    gLogger.always("Stopped", " ".join(args.services))
    return 0


if __name__ == "__main__":
    sys.exit(main())

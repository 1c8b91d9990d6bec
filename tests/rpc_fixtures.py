"""Start real RPC services for tests: ``dirac-service`` subprocesses (or a server thread) on 127.0.0.1.

Load with ``tests/`` on ``sys.path`` (``from rpc_fixtures import ...`` or ``pytest_plugins``).

Helpers
-------
* ``free_port()``: a free TCP port on 127.0.0.1.
* ``service_cfg(env, services, extra="")``: cfg text = ``registry_cfg(env)`` (from security_fixtures)
  + ``/Systems/<System>/Services/<Service>`` sections from ``services`` =
  ``{"System/Service": {"Port": 1234, "HandlerPath": "mod", "Authorization": {"m": "X"}}}``
  + ``/Systems/<System>/URLs/<Service>`` when a ``"URLs"`` key is given, merged with the ``extra``
  cfg text (which may add to any section, /Registry included).
* ``ServiceLauncher``: ``start(services, cfgPath, port=None, pythonPath=(), env=None)`` runs
  ``python -m DIRAC.Core.scripts.dirac_service <services> --host 127.0.0.1 --port <port>`` with
  ``DIRACSYSCONFIG=cfgPath`` and ``X509_CERT_DIR`` from the cfg's ``CALocation`` if given, waits
  until every service logged "Service ready" (bounded), and returns a ``ServiceProcess``
  (``pid``, ``port``, ``url(service)``, ``log()``, ``stop()``). ``stopAll()`` stops every process
  it started, by PID (SIGTERM, then SIGKILL after a grace period).
* ``ThreadedService``: the same services in a ``TornadoServer`` thread of the test process
  (uses the test process's gConfig; handy for handler classes defined in the test).

Fixtures
--------
* ``rpc_launcher`` (function): a ``ServiceLauncher`` whose processes are stopped after the test.
* ``rpc_launcher_module`` (module): the same, shared by a test module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from DIRAC.Core.Utilities.Subprocesses import freePort

START_TIMEOUT = 90.0  # seconds for a dirac-service to be ready: 2-6 s alone, 10-20 s on a loaded 2-core machine
STOP_TIMEOUT = 10.0
READY_MARK = "Service ready"


free_port = freePort


def _cfgBlock(name: str, value, indent: int) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        inner = "".join(_cfgBlock(key, item, indent + 1) for key, item in value.items())
        return f"{pad}{name}\n{pad}{{\n{inner}{pad}}}\n"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(item) for item in value)
    return f"{pad}{name} = {value}\n"


def service_cfg(env, services: dict[str, dict], extra: str = "") -> str:
    """cfg text: the test registry and security of ``env`` plus the services' sections."""
    from security_fixtures import registry_cfg

    systems: dict[str, dict] = {}
    for name, options in services.items():
        system, service = name.split("/")
        options = dict(options)
        urls = options.pop("URLs", None)
        entry = systems.setdefault(system, {"Services": {}, "URLs": {}})
        entry["Services"][service] = options
        if urls:
            entry["URLs"][service] = urls
    for entry in systems.values():
        if not entry["URLs"]:
            del entry["URLs"]
    from diraccfg import CFG

    merged = CFG().loadFromBuffer(registry_cfg(env))
    merged = merged.mergeWith(CFG().loadFromBuffer(_cfgBlock("Systems", systems, 0)))
    if extra.strip():
        merged = merged.mergeWith(CFG().loadFromBuffer(extra))
    return str(merged)


@dataclass
class ServiceProcess:
    """A running ``dirac-service`` subprocess."""

    proc: subprocess.Popen
    port: int
    services: list[str]
    logPath: str
    host: str = "localhost"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, service: str | None = None) -> str:
        """``https://localhost:<port>/<service>`` (the first service by default)."""
        return f"https://{self.host}:{self.port}/{service or self.services[0]}"

    def log(self) -> str:
        """Everything the process wrote so far."""
        return Path(self.logPath).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM by PID, SIGKILL if it does not stop in ``timeout``; returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        return self.proc.returncode


def _caFromCfg(cfgPath: str) -> str | None:
    from diraccfg import CFG

    try:
        return CFG().loadFromFile(cfgPath).getOption("DIRAC/Security/CALocation", None)
    except Exception:  # noqa: BLE001 - a cfg the service itself will complain about
        return None


@dataclass
class ServiceLauncher:
    """Starts ``dirac-service`` subprocesses and remembers them to stop them."""

    logDir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="rpc-logs-"))
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(
        self,
        services: str | list[str],
        cfgPath: str | Path,
        port: int | None = None,
        pythonPath: Iterable[str] = (),
        env: dict | None = None,
        extraArgs: Iterable[str] = (),
        wait: bool = True,
        configuredPort: bool = False,
    ) -> ServiceProcess:
        """Run the services and wait until they are ready; raises RuntimeError with the log if not.

        ``configuredPort=True`` does not pass ``--port``: the service must listen on its configured
        Port, which ``port`` must then name.
        """
        services = [services] if isinstance(services, str) else list(services)
        if configuredPort and not port:
            raise ValueError("configuredPort=True needs the configured port in port=")
        port = port or free_port()
        childEnv = dict(os.environ)
        childEnv["DIRACSYSCONFIG"] = str(cfgPath)
        ca = _caFromCfg(str(cfgPath))
        if ca:
            childEnv["X509_CERT_DIR"] = ca
        childEnv.pop("X509_USER_PROXY", None)
        paths = [str(path) for path in pythonPath]
        if paths:
            childEnv["PYTHONPATH"] = os.pathsep.join(paths + [childEnv.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        childEnv.update(env or {})
        logPath = os.path.join(self.logDir, f"{services[0].replace('/', '_')}-{port}.log")
        command = [sys.executable, "-m", "DIRAC.Core.scripts.dirac_service", *services]
        command += ["--host", "127.0.0.1", *([] if configuredPort else ["--port", str(port)]), *extraArgs]
        with open(logPath, "wb") as logFile:
            proc = subprocess.Popen(command, stdout=logFile, stderr=subprocess.STDOUT, env=childEnv)
        service = ServiceProcess(proc=proc, port=port, services=services, logPath=logPath)
        self.processes.append(service)
        if wait:
            self.waitReady(service)
        return service

    def waitReady(self, service: ServiceProcess, timeout: float = START_TIMEOUT) -> None:
        """Wait until the process logged readiness for every service; raise with its log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.log().count(READY_MARK) >= len(service.services):
                return
            if not service.alive():
                raise RuntimeError(f"dirac-service exited with {service.proc.returncode}:\n{service.log()}")
            time.sleep(0.05)
        service.stop()
        raise RuntimeError(f"dirac-service not ready after {timeout} s:\n{service.log()}")

    def stopAll(self) -> None:
        """Stop every process started here."""
        for service in self.processes:
            service.stop()
        self.processes = []


class ThreadedService:
    """Services in a ``TornadoServer`` thread of this process (127.0.0.1, a free port)."""

    def __init__(self, services: str | list[str], handlers: dict[str, type] | None = None, **options) -> None:
        from DIRAC.Core.Tornado.Server.TornadoServer import TornadoServer

        self.services = [services] if isinstance(services, str) else list(services)
        self.server = TornadoServer(self.services, port=0, host="127.0.0.1", handlers=handlers, **options)

    def start(self) -> ThreadedService:
        result = self.server.startInThread()
        if not result["OK"]:
            raise RuntimeError(result["Message"])
        return self

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, service: str | None = None) -> str:
        return f"https://localhost:{self.port}/{service or self.services[0]}"

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def rpc_launcher(tmp_path_factory):
    """A ServiceLauncher; its processes are stopped after the test (logs kept by pytest's tmp retention)."""
    launcher = ServiceLauncher(logDir=str(tmp_path_factory.mktemp("rpc-logs")))
    yield launcher
    launcher.stopAll()


@pytest.fixture(scope="module")
def rpc_launcher_module(tmp_path_factory):
    """A ServiceLauncher shared by a test module; its processes are stopped at the end."""
    launcher = ServiceLauncher(logDir=str(tmp_path_factory.mktemp("rpc-logs")))
    yield launcher
    launcher.stopAll()

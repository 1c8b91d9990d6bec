"""The server process: dirac-service's command line, ports, clean stop, the handler thread pool."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Utilities.ReturnValues import S_OK
from rpc_fixtures import ThreadedService, free_port, service_cfg

HERE = Path(__file__).resolve().parent
SERVICE = "Framework/RPCTest"
DIRAC_SERVICE = str(Path(sys.executable).parent / "dirac-service")


@pytest.fixture
def client_env(security_cfg, test_ca, monkeypatch):
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    return security_cfg


@pytest.fixture
def proxy(test_ca, tmp_path) -> str:
    return test_ca.proxy("alice", "dirac_user", 3600, tmp_path / "proxy")


def _write(tmp_path, test_ca, options: dict) -> Path:
    path = tmp_path / "server.cfg"
    path.write_text(service_cfg(test_ca, {SERVICE: {"HandlerPath": "rpc_test_handlers", **options}}))
    return path


def _run(args: list[str], cfgPath: Path) -> subprocess.CompletedProcess:
    env = {"DIRACSYSCONFIG": str(cfgPath), "PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"}
    return subprocess.run([DIRAC_SERVICE, *args], env=env, capture_output=True, text=True, timeout=60)


def test_service_runs_on_its_configured_port_and_stops_on_sigterm(test_ca, tmp_path, rpc_launcher, client_env, proxy):
    port = free_port()
    service = rpc_launcher.start(
        SERVICE, _write(tmp_path, test_ca, {"Port": port}), port=port, pythonPath=[str(HERE)], configuredPort=True
    )
    assert RPCClient(service.url(), proxyLocation=proxy).ping()["Value"]["name"] == SERVICE
    assert "Service ready Framework/RPCTest at https://127.0.0.1:" in service.log()
    assert service.stop() == 0
    assert "Stopped Framework/RPCTest" in service.log()


def test_several_services_share_one_server(test_ca, tmp_path, rpc_launcher, client_env, proxy):
    cfgPath = tmp_path / "server.cfg"
    cfgPath.write_text(
        service_cfg(
            test_ca,
            {
                SERVICE: {"HandlerPath": "rpc_test_handlers"},
                "Framework/RPCTestCopy": {"HandlerPath": "rpc_test_handlers", "Module": "RPCTest", "Greeting": "copy"},
            },
        )
    )
    service = rpc_launcher.start([SERVICE, "Framework/RPCTestCopy"], cfgPath, pythonPath=[str(HERE)])
    copy = RPCClient(service.url("Framework/RPCTestCopy"), proxyLocation=proxy).info()
    assert copy["Value"]["option"] == "copy"
    assert RPCClient(service.url(), proxyLocation=proxy).info()["Value"]["option"] == "none"


def test_unknown_service_is_a_clear_error(test_ca, tmp_path):
    args = ["Framework/NoSuchThing", "--host", "127.0.0.1", "--port", str(free_port())]
    done = _run(args, _write(tmp_path, test_ca, {}))
    assert done.returncode == 1
    assert "unknown service Framework/NoSuchThing" in done.stdout, done.stdout + done.stderr
    assert done.stderr == "", "dirac-service logs to stdout"
    assert "NoSuchThingHandler" in done.stdout


def test_missing_or_bad_port_is_a_clear_error(test_ca, tmp_path):
    done = _run([SERVICE, "--host", "127.0.0.1"], _write(tmp_path, test_ca, {}))
    assert done.returncode == 1
    assert "/Systems/Framework/Services/RPCTest/Port is not set" in done.stdout, done.stdout + done.stderr
    done = _run([SERVICE, "--host", "127.0.0.1"], _write(tmp_path, test_ca, {"Port": "nine"}))
    assert "'nine' is not a port number" in done.stdout
    done = _run(["NotAServiceName"], _write(tmp_path, test_ca, {}))
    assert done.returncode == 1 and "System/Service" in done.stdout


def test_blocking_handlers_run_in_parallel_in_the_thread_pool(test_ca, tmp_path, rpc_launcher, client_env, proxy):
    service = rpc_launcher.start(SERVICE, _write(tmp_path, test_ca, {"MaxThreads": 8}), pythonPath=[str(HERE)])
    client = RPCClient(service.url(), proxyLocation=proxy)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.sleep(0.5), range(8)))
    assert all(result["OK"] for result in results)
    assert time.monotonic() - start < 2.5, "8 calls of 0.5 s should overlap"


class InProcessHandler(RequestHandler):
    """A handler class given to the server directly, without any module lookup."""

    types_double = [int]

    def export_double(self, value):
        return S_OK(2 * value)


def test_handler_class_given_explicitly_in_a_server_thread(client_env, proxy):
    server = ThreadedService("Framework/InProcess", handlers={"Framework/InProcess": InProcessHandler}).start()
    try:
        client = RPCClient(server.url(), proxyLocation=proxy)
        assert client.double(21)["Value"] == 42
        assert client.whoami()["Value"]["username"] == "alice"
    finally:
        server.stop()
    assert not RPCClient(server.url(), proxyLocation=proxy, timeout=2).ping()["OK"]


def test_client_refuses_a_server_certificate_from_an_unknown_ca(client_env, proxy, unknown_ca, test_ca):
    server = ThreadedService(
        "Framework/InProcess",
        handlers={"Framework/InProcess": InProcessHandler},
        certFile=unknown_ca.hostCert,
        keyFile=unknown_ca.hostKey,
        caPath=test_ca.caDir,
    ).start()
    try:
        result = RPCClient(server.url(), proxyLocation=proxy, timeout=5).ping()
    finally:
        server.stop()
    assert not result["OK"] and "cannot verify the server certificate" in result["Message"], result

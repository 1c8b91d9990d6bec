"""Fail-over: a service listed with several URLs keeps answering while instances stop or hang."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData
from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Tornado.Client.TornadoClient import clearFailed, markFailed
from DIRAC.Core.Utilities import DErrno
from rpc_fixtures import free_port, service_cfg

HERE = Path(__file__).resolve().parent
SERVICE = "Framework/RPCTest"


@pytest.fixture
def two_instances(test_ca, tmp_path, rpc_launcher, monkeypatch):
    """Two dirac-service processes of the same service; the test process's config lists both URLs."""
    ports = [free_port(), free_port()]
    urls = [f"https://localhost:{port}/{SERVICE}" for port in ports]
    cfgPath = tmp_path / "dirac.cfg"
    cfgPath.write_text(service_cfg(test_ca, {SERVICE: {"HandlerPath": "rpc_test_handlers", "URLs": urls}}))
    instances = [rpc_launcher.start(SERVICE, cfgPath, port=port, pythonPath=[str(HERE)]) for port in ports]
    monkeypatch.setenv("DIRACSYSCONFIG", str(cfgPath))
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    gConfigurationData.loadAll()
    yield instances
    monkeypatch.undo()
    gConfigurationData.loadAll()


@pytest.fixture
def proxy(test_ca, tmp_path) -> str:
    return test_ca.proxy("alice", "dirac_user", 3600, tmp_path / "proxy")


def _pid(result: dict) -> int:
    assert result["OK"], result.get("Message")
    return result["Value"]


def test_every_call_is_answered_while_one_instance_stops(two_instances, proxy):
    first, second = two_instances
    client = RPCClient(SERVICE, proxyLocation=proxy, timeout=10)
    served = {_pid(client.sleep(0)) for _ in range(20)}
    assert served == {first.pid, second.pid}, "calls should be spread over both instances"
    assert first.stop() == 0, first.log()  # SIGTERM: clean stop
    assert "Stopping" in first.log()
    start = time.monotonic()
    assert {_pid(client.sleep(0)) for _ in range(30)} == {second.pid}
    assert time.monotonic() - start < 10


def test_no_instance_left_gives_an_error_naming_each_url(two_instances, proxy):
    for instance in two_instances:
        instance.stop()
    result = RPCClient(SERVICE, proxyLocation=proxy, timeout=5).ping()
    assert not result["OK"] and result["Errno"] == DErrno.ECONNREFUSED, "refused everywhere: it ran nowhere"
    for instance in two_instances:
        assert f"{instance.url()}: Connection refused" in result["Message"]


def test_a_hanging_instance_is_left_after_the_timeout(two_instances, proxy):
    with socket.socket() as blackhole:  # accepts TCP connections, never speaks TLS
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        hanging = f"https://localhost:{blackhole.getsockname()[1]}/{SERVICE}"
        good = two_instances[0].url()
        client = RPCClient(f"{hanging},{good}", proxyLocation=proxy, timeout=1)
        clearFailed()
        markFailed(good)  # so that the hanging URL is tried first
        start = time.monotonic()
        assert _pid(client.sleep(0)) == two_instances[0].pid
        assert 1 <= time.monotonic() - start < 3, "the first call should wait for the timeout, then fail over"
        start = time.monotonic()
        for _ in range(10):
            assert client.ping()["OK"]
        assert time.monotonic() - start < 1, "a URL that timed out is tried last for a while"
        alone = RPCClient(hanging, proxyLocation=proxy, timeout=1).ping()
        assert not alone["OK"] and "timed out" in alone["Message"], alone


def test_an_error_answer_is_not_failed_over(two_instances, proxy):
    client = RPCClient(SERVICE, proxyLocation=proxy, timeout=10)
    result = client.failing()
    assert not result["OK"] and result["Message"] == "a plain failure"
    assert client.add(1, 2)["Value"] == 3


def test_a_read_timeout_of_a_non_idempotent_call_is_reported_not_sent_again(two_instances, proxy):
    client = RPCClient(SERVICE, proxyLocation=proxy, timeout=1)
    clearFailed()
    start = time.monotonic()
    result = client.sleep(2)  # the service runs it; the answer comes after our timeout
    elapsed = time.monotonic() - start
    assert not result["OK"] and result["Errno"] == DErrno.ERPC
    assert "may have run" in result["Message"], result
    assert result["Message"].count("https://") == 1, "only one instance may have been asked"
    assert elapsed < 1.9, "the call must not wait for a second instance"


def test_a_read_timeout_of_an_idempotent_call_fails_over(two_instances, proxy):
    client = RPCClient(SERVICE, proxyLocation=proxy, timeout=1, idempotentMethods=["sleep"])
    clearFailed()
    result = client.sleep(2)
    assert not result["OK"] and result["Message"].count("https://") == 2, result
    assert "may have run" not in result["Message"]


def test_idempotent_methods_by_name():
    from DIRAC.Core.Tornado.Client.TornadoClient import isIdempotent

    assert all(isIdempotent(name) for name in ("getReplicas", "listDirectory", "exists", "hasAccess", "ping"))
    assert not any(isIdempotent(name) for name in ("addFile", "removeFile", "issue", "getaway", "sleep"))
    assert isIdempotent("addFile", ("addFile",))

"""Who may call: real TLS on 127.0.0.1 against a ``dirac-service`` subprocess, test CA certificates."""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import pytest
import requests

from DIRAC.Core.Base.Client import Client
from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Security.X509Chain import X509Chain
from DIRAC.Core.Tornado.Client.TornadoClient import clientSSLContext, sessionFor
from DIRAC.Core.Utilities import DErrno

HERE = Path(__file__).resolve().parent
SERVICE = "Framework/RPCTest"
MAX_REQUEST = 64 * 1024


def _ok(result: dict):
    assert result["OK"], result.get("Message")
    return result["Value"]


def _refused(result: dict, *fragments: str) -> str:
    assert not result["OK"], f"expected a refusal, got {result}"
    for fragment in fragments:
        assert fragment in result["Message"], result["Message"]
    return result["Message"]


@pytest.fixture(scope="module")
def creds(test_ca, tmp_path_factory):
    """Credential files of the callers used below."""
    from rpc_fixtures import service_cfg
    from security_fixtures import make_expired_proxy

    folder = tmp_path_factory.mktemp("rpcauth")
    ca = test_ca.ca
    carolCert, carolKey, carolDN = ca.createUser("carol")  # trusted CA, not in the registry
    otherCert, otherKey = ca.createHost("otherhost")  # a host without TrustedHost

    def combined(name: str, cert: str, key: str) -> str:
        path = folder / name
        path.write_text(Path(cert).read_text() + Path(key).read_text())
        path.chmod(0o600)
        return str(path)

    alice = test_ca.users["alice"]
    adminProxy = test_ca.proxy("alice", "dirac_admin", 3600, folder / "alice_admin")
    chain = X509Chain()
    _ok(chain.loadProxyFromFile(adminProxy))
    proxyOfProxy = _ok(chain.generateProxyToFile(str(folder / "alice_admin_2"), 1800))
    files = {
        "userCert": combined("alice_cert.pem", alice.cert, alice.key),
        "adminProxy": adminProxy,
        "proxyOfProxy": proxyOfProxy,
        "userProxy": test_ca.proxy("alice", "dirac_user", 3600, folder / "alice_user"),
        "noGroupProxy": test_ca.proxy("alice", None, 3600, folder / "alice_nogroup"),
        "bobAdmin": test_ca.proxy("bob", "dirac_admin", 3600, folder / "bob_admin"),
        "noSuchGroup": test_ca.proxy("alice", "nosuchgroup", 3600, folder / "alice_nosuch"),
        "expired": make_expired_proxy(alice.cert, alice.key, folder / "alice_expired"),
        "carol": combined("carol.pem", carolCert, carolKey),
        "otherHost": combined("otherhost.pem", otherCert, otherKey),
        "aliceDN": alice.dn,
        "bobDN": test_ca.users["bob"].dn,
        "carolDN": carolDN,
    }
    extra = f"""
Registry
{{
  Hosts
  {{
    otherhost
    {{
      DN = {ca.hostDN("otherhost")}
      Properties = NormalUser
    }}
  }}
}}
"""
    services = {
        SERVICE: {
            "HandlerPath": "rpc_test_handlers",
            "MaxRequestSize": MAX_REQUEST,
            "Greeting": "hello",
            "Authorization": {"configured": "group:dirac_admin"},
        }
    }
    cfgPath = folder / "server.cfg"
    cfgPath.write_text(service_cfg(test_ca, services, extra))
    files["cfg"] = str(cfgPath)
    return files


@pytest.fixture(scope="module")
def service(creds, rpc_launcher_module):
    return rpc_launcher_module.start(SERVICE, creds["cfg"], pythonPath=[str(HERE)])


@pytest.fixture
def client_env(security_cfg, test_ca, monkeypatch):
    """The test process as a client: trusts the test CA, no proxy in the environment."""
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    monkeypatch.setenv("X509_USER_PROXY", "/nonexistent/x509up")
    return security_cfg


def rpc(service, proxy: str | None = None, **kwargs) -> RPCClient:
    return RPCClient(service.url(), proxyLocation=proxy, timeout=20, **kwargs)


def _rawExchange(port: int, credentials: str, caDir: str) -> bytes | Exception:
    """One raw HTTPS request with ``credentials``; the start of the answer, or the error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(capath=caDir)
    context.load_cert_chain(credentials)
    request = b"POST /Framework/RPCTest HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(request + b'{"method":"ping"}')
                return tls.recv(100)
    except (ssl.SSLError, OSError) as exc:
        return exc


# Accepted


def test_user_certificate_is_accepted_in_the_default_group(service, creds, client_env):
    who = _ok(rpc(service, creds["userCert"]).whoami())
    assert who == {
        "DN": creds["aliceDN"],
        "username": "alice",
        "group": "dirac_user",
        "properties": ["NormalUser"],
        "isProxy": False,
    }


def test_proxy_is_accepted_with_its_group(service, creds, client_env):
    who = _ok(rpc(service, creds["adminProxy"]).whoami())
    assert (who["username"], who["group"], who["isProxy"]) == ("alice", "dirac_admin", True)
    assert "CSAdministrator" in who["properties"]


def test_proxy_of_a_proxy_is_accepted(service, creds, client_env):
    who = _ok(rpc(service, creds["proxyOfProxy"]).whoami())
    assert (who["DN"], who["group"], who["isProxy"]) == (creds["aliceDN"], "dirac_admin", True)


def test_proxy_without_group_gets_the_default_group(service, creds, client_env):
    assert _ok(rpc(service, creds["noGroupProxy"]).whoami())["group"] == "dirac_user"


def test_host_certificate_is_a_host(service, creds, client_env, test_ca):
    who = _ok(rpc(service, useCertificates=True).whoami())
    assert who == {
        "DN": test_ca.hostDN,
        "username": "localhost",
        "group": "hosts",
        "properties": ["TrustedHost"],
        "isProxy": False,
    }


def test_client_base_class_and_handler_services(service, creds, client_env):
    class RPCTestClient(Client):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.setServer(service.url())

        def add(self, first, second):
            return self._getRPC().add(first, second)

    client = RPCTestClient(proxyLocation=creds["userProxy"])
    assert _ok(client.add(2, 3)) == 5
    assert _ok(client.echo({"a": [1, 2]})) == {"a": [1, 2]}  # forwarded by __getattr__
    assert _ok(client.executeRPC(b"raw", call="echo")) == b"raw"  # bytes survive the JSON wire
    info = _ok(client.info())
    assert info["option"] == "hello" and info["greeting"].startswith("initialized Framework/RPCTest")
    described = _ok(client.describe("n", (1, 2), {"k": 1}))
    assert described == {"name": "n", "items": [1, 2], "options": {"k": 1}, "itemsType": "list"}
    _refused(client.failing(), "a plain failure")


# Refused


def test_expired_proxy_is_refused_by_the_client_and_the_server(service, creds, client_env, test_ca):
    result = rpc(service, creds["expired"]).ping()
    _refused(result, "expired")
    assert result["Errno"] == DErrno.ECERTEXPIRED
    # The server refuses it too, during the handshake, whatever the client checks.
    refused = _rawExchange(service.port, creds["expired"], test_ca.caDir)
    assert not (isinstance(refused, bytes) and refused.startswith(b"HTTP/")), refused
    control = _rawExchange(service.port, creds["userProxy"], test_ca.caDir)
    assert isinstance(control, bytes) and control.startswith(b"HTTP/1.1 200"), control
    assert _ok(rpc(service, creds["userProxy"]).ping())  # still up


def test_certificate_from_unknown_ca_is_refused(service, unknown_ca, client_env, tmp_path):
    mallory = unknown_ca.users["mallory"]
    path = tmp_path / "mallory.pem"
    path.write_text(Path(mallory.cert).read_text() + Path(mallory.key).read_text())
    # The server's alert (unknown CA) may be lost when it closes the connection (TLS 1.3).
    _refused(rpc(service, str(path)).ping(), "the server", "refused our certificate")


def test_plain_http_is_refused(service, creds, client_env):
    _refused(RPCClient(f"http://127.0.0.1:{service.port}/{SERVICE}", proxyLocation=creds["userProxy"]).ping(), "https")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"http://127.0.0.1:{service.port}/{SERVICE}", json={"method": "ping"}, timeout=10)
    assert _ok(rpc(service, creds["userProxy"]).ping())


def test_proxy_group_the_user_is_not_in_is_refused(service, creds, client_env):
    result = rpc(service, creds["bobAdmin"]).whoami()
    _refused(result, "bob is not a member of group dirac_admin")
    assert result["Errno"] == DErrno.ENOAUTH


def test_group_that_does_not_exist_is_refused(service, creds, client_env):
    _refused(rpc(service, creds["noSuchGroup"]).whoami(), "group nosuchgroup does not exist")


def test_unknown_dn_may_only_call_open_methods(service, creds, client_env):
    client = rpc(service, creds["carol"])
    assert _ok(client.ping())["name"] == SERVICE  # ping is open to all
    _refused(client.whoami(), "unknown identity", creds["carolDN"])
    _refused(client.echo(1), "unknown identity")  # no rule anywhere: authenticated by default


def test_missing_property_is_refused(service, creds, client_env):
    _refused(rpc(service, creds["userProxy"]).adminOnly(), "lacks the required property", "CSAdministrator")
    assert _ok(rpc(service, creds["adminProxy"]).adminOnly()) == "admin"


def test_authorization_from_the_configuration(service, creds, client_env):
    _refused(rpc(service, creds["userProxy"]).configured(), "group dirac_user may not call it")
    assert _ok(rpc(service, creds["adminProxy"]).configured()) == "configured"


def test_wrong_argument_types_are_refused_before_the_call(service, creds, client_env):
    client = rpc(service, creds["userProxy"])
    result = client.add("1", 2)
    _refused(result, "add: argument 1 should be int, got str")
    assert result["Errno"] == DErrno.ETYPE
    _refused(client.describe("n", "notalist", {}), "argument 2 should be list or tuple")
    _refused(client.add(1), "missing arguments")
    _refused(client.add(1, 2, 3), "wrong arguments")


def test_handler_exception_gives_no_traceback_to_the_caller(service, creds, client_env):
    message = _refused(rpc(service, creds["userProxy"]).boom(), "see server log")
    assert "secret internal detail" not in message and "Traceback" not in message
    _refused(rpc(service, creds["userProxy"]).badReturn(), "invalid value")
    deadline = time.monotonic() + 5
    while "secret internal detail" not in service.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Traceback" in service.log() and "secret internal detail" in service.log()


def test_oversized_request_is_refused_and_the_service_stays_up(service, creds, client_env):
    client = rpc(service, creds["userProxy"])
    _refused(client.echo("x" * (MAX_REQUEST + 1)), "exceeds the limit", str(MAX_REQUEST))
    _refused(client.echo("x" * (16 * MAX_REQUEST)), "exceeds the limit")  # read and dropped, not kept
    assert _ok(client.echo("x" * (MAX_REQUEST // 2))) == "x" * (MAX_REQUEST // 2)


def test_bad_requests_get_an_error_naming_the_cause(service, creds, client_env):
    key, context = _ok(clientSSLContext(creds["userProxy"], creds["userProxy"]))
    session = sessionFor(key, context)
    url = service.url()

    def post(body) -> dict:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = session.post(url, data=data, timeout=20)
        result = answer.json()
        assert result["OK"] is False
        return result["Message"]

    assert "not valid JSON" in post(b"{not json")
    assert "empty request body" in post(b"")
    assert "must be a JSON object" in post([1, 2])
    assert 'no "method"' in post({"args": []})
    assert '"args" must be a JSON list' in post({"method": "echo", "args": "x"})
    assert "unknown method 'nope'" in post({"method": "nope", "args": []})
    assert "unknown method '_private'" in post({"method": "_private", "args": []})
    assert "unknown request fields: extra" in post({"method": "ping", "args": [], "extra": 1})
    assert "no service at /Framework/Nope" in session.post(url.replace("RPCTest", "Nope"), data=b"{}").json()["Message"]
    assert "takes POST" in session.get(url, timeout=20).json()["Message"]
    assert _ok(rpc(service, creds["userProxy"]).ping())


def test_missing_proxy_gives_a_clear_error(service, client_env):
    result = RPCClient(service.url()).ping()
    _refused(result, "no proxy found at /nonexistent/x509up", "dirac-proxy-init")
    assert result["Errno"] == DErrno.ENOPROXY


# Delegation (a trusted host acting for a user, as the S3 gateway does)


def test_trusted_host_may_act_for_a_user(service, creds, client_env):
    client = rpc(service, useCertificates=True, delegatedDN=creds["aliceDN"], delegatedGroup="dirac_admin")
    who = _ok(client.whoami())
    assert (who["username"], who["group"], who["DN"]) == ("alice", "dirac_admin", creds["aliceDN"])
    assert "CSAdministrator" in who["properties"]
    assert _ok(client.adminOnly()) == "admin"
    # No group: the user's default group.
    assert _ok(rpc(service, useCertificates=True, delegatedDN=creds["aliceDN"]).whoami())["group"] == "dirac_user"


def test_delegation_is_refused_to_users_and_untrusted_hosts(service, creds, client_env):
    bobDN = creds["bobDN"]
    _refused(rpc(service, creds["adminProxy"], delegatedDN=bobDN).whoami(), "alice is not a host")
    _refused(rpc(service, creds["otherHost"], delegatedDN=bobDN).whoami(), "lacks the TrustedHost property")
    _refused(
        rpc(service, useCertificates=True, delegatedDN=bobDN, delegatedGroup="dirac_admin").whoami(),
        "bob is not a member of group dirac_admin",
    )
    _refused(rpc(service, useCertificates=True, delegatedDN=creds["carolDN"]).ping(), "unknown identity")


def test_a_renewed_proxy_is_used_at_the_next_call(service, test_ca, client_env, tmp_path):
    path = tmp_path / "renewed"
    client = rpc(service, test_ca.proxy("alice", "dirac_user", 3600, path))
    assert _ok(client.whoami())["group"] == "dirac_user"
    test_ca.proxy("alice", "dirac_admin", 3600, path)  # dirac-proxy-init again, same file
    assert _ok(client.whoami())["group"] == "dirac_admin"

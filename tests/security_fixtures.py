"""Certificates for the tests: a pytest plugin module (test CA, host and user certificates, proxies).

Load it with ``pytest_plugins = ["security_fixtures"]`` in ``tests/conftest.py`` (``tests/`` on
``sys.path``) or ``-p security_fixtures``.

Fixtures
--------
* ``test_ca`` (session): a ``SecurityEnv`` for a CA made in a temporary folder, with a host
  certificate for ``localhost`` (``hostCert``/``hostKey``), users ``alice`` and ``bob``
  (``users[name]`` -> ``UserCred(cert, key, dn)``) and an expired user ``expired``.
  ``caDir`` is the folder to use as ``X509_CERT_DIR`` / ``capath``.
* ``unknown_ca`` (session): the same made by a second CA nobody trusts (user ``mallory``, host ``localhost``).
* ``user_proxy`` (function): a proxy of alice with group ``dirac_user`` in ``tmp_path``, path returned.
* ``security_cfg`` (function): ``registry_cfg(test_ca)`` written to ``tmp_path/dirac.cfg``, pointed at
  by ``DIRACSYSCONFIG`` and loaded into ``gConfig``; the previous configuration is reloaded after
  the test. Returns the cfg file's path.

Helpers
-------
* ``SecurityEnv.proxy(user, group, lifetime, path)``: a fresh proxy file of a user.
* ``make_expired_proxy(certFile, keyFile, path)``: a proxy whose validity ended an hour ago.
* ``registry_cfg(env, ...)``: cfg text for ``/Registry`` (users alice, bob; groups dirac_user,
  dirac_admin; host localhost) and ``/DIRAC/Security`` (CA dir, host cert and key).
* ``server_ssl_context(certFile, keyFile, caDir)`` / ``client_ssl_context(...)``: Python ``ssl``
  contexts set up as the RPC layer should (mutual TLS, proxies allowed).
* ``tls_handshake(serverCtx, clientCtx)``: one real handshake on 127.0.0.1; returns a
  ``HandshakeResult`` with the chain the server verified (``X509Chain``) or the errors.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from DIRAC.Core.Security.TestCA import TestCA
from DIRAC.Core.Security.X509Certificate import (
    DIRAC_GROUP_OID,
    buildCertificate,
    extendName,
    newKey,
    utcNow,
    writePrivateFile,
)
from DIRAC.Core.Security.X509Chain import PROXY_EXTENSIONS, X509Chain

HANDSHAKE_TIMEOUT = 10.0  # seconds; every socket and thread join is bounded by it


@dataclass
class UserCred:
    """A user certificate made by the test CA."""

    cert: str
    key: str
    dn: str


@dataclass
class SecurityEnv:
    """A test CA and the credentials it issued."""

    ca: TestCA
    hostCert: str
    hostKey: str
    hostDN: str
    users: dict[str, UserCred] = field(default_factory=dict)

    @property
    def caDir(self) -> str:
        """The trusted-CA folder (``X509_CERT_DIR``, ``capath``)."""
        return self.ca.caDir

    @property
    def caCert(self) -> str:
        """The CA certificate file (``cafile``)."""
        return self.ca.caCertPath

    def proxy(self, user: str = "alice", group: str | None = "dirac_user", lifetime: int = 3600, path=None) -> str:
        """Write a new proxy of ``user`` to ``path`` (a temp file when None); return the path."""
        cred = self.users[user]
        chain = X509Chain()
        _check(chain.loadChainFromFile(cred.cert))
        _check(chain.loadKeyFromFile(cred.key))
        return _check(chain.generateProxyToFile(str(path) if path else None, lifetime, diracGroup=group))


def _check(result: dict):
    if not result["OK"]:
        raise RuntimeError(result["Message"])
    return result["Value"]


def make_env(folder: Path, caName: str, users: list[str], expiredUsers: list[str] = ()) -> SecurityEnv:
    """A CA in ``folder`` with a ``localhost`` host certificate and the named users."""
    ca = TestCA(str(folder), caName=caName)
    ca.createCA()
    hostCert, hostKey = ca.createHost("localhost")
    env = SecurityEnv(ca=ca, hostCert=hostCert, hostKey=hostKey, hostDN=ca.hostDN("localhost"))
    for name in users:
        env.users[name] = UserCred(*ca.createUser(name))
    for name in expiredUsers:
        env.users[name] = UserCred(*ca.createUser(name, expired=True))
    return env


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> SecurityEnv:
    """The trusted test CA with host ``localhost``, users alice, bob and the expired user ``expired``."""
    return make_env(tmp_path_factory.mktemp("testca"), "DIRAC Test CA", ["alice", "bob"], ["expired"])


@pytest.fixture(scope="session")
def unknown_ca(tmp_path_factory) -> SecurityEnv:
    """A second CA that nobody trusts, with host ``localhost`` and user mallory."""
    return make_env(tmp_path_factory.mktemp("unknownca"), "Unknown Test CA", ["mallory"])


@pytest.fixture
def user_proxy(test_ca, tmp_path) -> str:
    """A 1-hour proxy of alice with group dirac_user, in ``tmp_path``."""
    return test_ca.proxy("alice", "dirac_user", 3600, tmp_path / "x509up_alice")


@pytest.fixture
def security_cfg(test_ca, tmp_path, monkeypatch):
    """Load ``registry_cfg(test_ca)`` as the local configuration for one test; returns the cfg path."""
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    path = tmp_path / "dirac.cfg"
    path.write_text(registry_cfg(test_ca))
    monkeypatch.setenv("DIRACSYSCONFIG", str(path))
    _check(gConfigurationData.loadAll())
    yield path
    monkeypatch.undo()
    gConfigurationData.loadAll()


def make_expired_proxy(certFile: str, keyFile: str, path, group: str | None = "dirac_user") -> str:
    """Write a proxy of the given certificate whose validity ended an hour ago."""
    chain = X509Chain()
    _check(chain.loadChainFromFile(certFile))
    _check(chain.loadKeyFromFile(keyFile))
    signer = _check(chain.getCertInChain(0)).x509
    signerKey = _check(chain.getPKeyObj())
    now = utcNow()
    extensions = list(PROXY_EXTENSIONS)
    if group:
        extensions.append((DIRAC_GROUP_OID, f"ASN1:IA5STRING:{group}", False))
    key = newKey()
    cert = buildCertificate(
        extendName(signer.get_subject(), "CN", "1"),
        key,
        signerKey,
        now - datetime.timedelta(hours=2),
        now - datetime.timedelta(hours=1),
        issuerCert=signer,
        extensions=extensions,
    )
    pem = cert.as_pem() + key.as_pem(cipher=None) + _check(chain.dumpChainToString()).encode()
    writePrivateFile(str(path), pem)
    return str(path)


def registry_cfg(env: SecurityEnv, defaultGroup: str = "dirac_user") -> str:
    """cfg text: /Registry for the env's users and host, /DIRAC/Security pointing at its CA and host cert."""
    alice, bob = env.users["alice"], env.users["bob"]
    return f"""
DIRAC
{{
  Security
  {{
    CALocation = {env.caDir}
    CertFile = {env.hostCert}
    KeyFile = {env.hostKey}
  }}
}}
Registry
{{
  DefaultGroup = {defaultGroup}
  Users
  {{
    alice
    {{
      DN = {alice.dn}
    }}
    bob
    {{
      DN = {bob.dn}
    }}
  }}
  Groups
  {{
    dirac_user
    {{
      Users = alice, bob
      Properties = NormalUser
      VO = testvo
    }}
    dirac_admin
    {{
      Users = alice
      Properties = CSAdministrator, ServiceAdministrator, FileCatalogManagement
      VO = testvo
    }}
  }}
  Hosts
  {{
    localhost
    {{
      DN = {env.hostDN}
      Properties = TrustedHost
    }}
  }}
}}
"""


def server_ssl_context(certFile: str, keyFile: str, caDir: str) -> ssl.SSLContext:
    """A TLS server context requiring a client certificate, proxies allowed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certFile, keyFile)
    context.load_verify_locations(capath=caDir)
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    return context


def client_ssl_context(certFile: str, keyFile: str | None, caDir: str) -> ssl.SSLContext:
    """A TLS client context presenting ``certFile`` (a proxy file holds its own key) and checking the server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(capath=caDir)
    context.load_cert_chain(certFile, keyFile or certFile)
    return context


@dataclass
class HandshakeResult:
    """What one TLS handshake gave: the peer chain the server verified, or the errors."""

    chain: X509Chain | None = None
    serverError: str = ""
    clientError: str = ""

    @property
    def ok(self) -> bool:
        """True when the server accepted the client."""
        return self.chain is not None and not self.serverError


def tls_handshake(serverCtx: ssl.SSLContext, clientCtx: ssl.SSLContext, serverName: str = "localhost"):
    """Run one handshake on 127.0.0.1 (server in a thread, joined before returning)."""
    outcome = HandshakeResult()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(HANDSHAKE_TIMEOUT)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                raw, _ = listener.accept()
                raw.settimeout(HANDSHAKE_TIMEOUT)
                with serverCtx.wrap_socket(raw, server_side=True) as tls:
                    ders = [cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in tls._sslobj.get_verified_chain()]
                    outcome.chain = _check(X509Chain.fromDERList(ders))
                    tls.sendall(b"k")
            except (OSError, ssl.SSLError, RuntimeError) as exc:
                outcome.serverError = str(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
                with clientCtx.wrap_socket(raw, server_hostname=serverName) as tls:
                    tls.recv(1)
        except (OSError, ssl.SSLError) as exc:
            outcome.clientError = str(exc)
        thread.join(HANDSHAKE_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("TLS test server thread did not finish")
    return outcome

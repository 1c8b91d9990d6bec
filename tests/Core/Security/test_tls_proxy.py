"""Real TLS handshakes on 127.0.0.1 (Python ssl, as the RPC layer uses it): the certificates and
proxies made by the security layer are accepted, expired ones and foreign CAs are refused."""

from __future__ import annotations

import ssl

from DIRAC.Core.Security.X509Chain import X509Chain
from security_fixtures import client_ssl_context, make_expired_proxy, server_ssl_context, tls_handshake


def value(result):
    assert result["OK"], result.get("Message")
    return result["Value"]


def server(test_ca) -> ssl.SSLContext:
    return server_ssl_context(test_ca.hostCert, test_ca.hostKey, test_ca.caDir)


def test_user_certificate_accepted(test_ca):
    alice = test_ca.users["alice"]
    outcome = tls_handshake(server(test_ca), client_ssl_context(alice.cert, alice.key, test_ca.caDir))
    assert outcome.ok, (outcome.serverError, outcome.clientError)
    assert value(outcome.chain.getIdentityDN()) == alice.dn
    assert value(outcome.chain.isProxy()) is False


def test_proxy_accepted_and_group_read(test_ca, user_proxy):
    outcome = tls_handshake(server(test_ca), client_ssl_context(user_proxy, None, test_ca.caDir))
    assert outcome.ok, (outcome.serverError, outcome.clientError)
    assert value(outcome.chain.isProxy()) is True
    assert value(outcome.chain.getIdentityDN()) == test_ca.users["alice"].dn
    assert value(outcome.chain.getDIRACGroup()) == "dirac_user"
    assert value(outcome.chain.getNumCertsInChain()) == 3  # proxy, user, CA


def test_proxy_of_proxy_accepted(test_ca, user_proxy, tmp_path):
    first = X509Chain()
    value(first.loadProxyFromFile(user_proxy))
    second = value(first.generateProxyToFile(str(tmp_path / "pp"), 600))
    outcome = tls_handshake(server(test_ca), client_ssl_context(second, None, test_ca.caDir))
    assert outcome.ok, (outcome.serverError, outcome.clientError)
    assert value(outcome.chain.getIdentityDN()) == test_ca.users["alice"].dn
    assert value(outcome.chain.getDIRACGroup()) == "dirac_user"  # a delegated proxy keeps the user's group
    assert value(outcome.chain.getNumCertsInChain()) == 4


def test_proxy_refused_without_allow_proxy_flag(test_ca, user_proxy):
    strict = server(test_ca)
    strict.verify_flags &= ~ssl.VERIFY_ALLOW_PROXY_CERTS
    outcome = tls_handshake(strict, client_ssl_context(user_proxy, None, test_ca.caDir))
    assert not outcome.ok
    assert "certificate verify failed" in outcome.serverError


def test_expired_proxy_refused(test_ca, tmp_path):
    alice = test_ca.users["alice"]
    expired = make_expired_proxy(alice.cert, alice.key, tmp_path / "expired")
    outcome = tls_handshake(server(test_ca), client_ssl_context(expired, None, test_ca.caDir))
    assert not outcome.ok
    assert "expired" in outcome.serverError


def test_expired_user_certificate_refused(test_ca):
    old = test_ca.users["expired"]
    outcome = tls_handshake(server(test_ca), client_ssl_context(old.cert, old.key, test_ca.caDir))
    assert not outcome.ok
    assert "expired" in outcome.serverError


def test_unknown_ca_refused(test_ca, unknown_ca, tmp_path):
    mallory = unknown_ca.users["mallory"]
    outcome = tls_handshake(server(test_ca), client_ssl_context(mallory.cert, mallory.key, test_ca.caDir))
    assert not outcome.ok
    assert "unable to get local issuer certificate" in outcome.serverError
    proxy = unknown_ca.proxy("mallory", "dirac_user", 600, tmp_path / "mallory_proxy")
    outcome = tls_handshake(server(test_ca), client_ssl_context(proxy, None, test_ca.caDir))
    assert not outcome.ok


def test_client_refuses_server_from_unknown_ca(test_ca, unknown_ca, user_proxy):
    rogue = server_ssl_context(unknown_ca.hostCert, unknown_ca.hostKey, test_ca.caDir)
    outcome = tls_handshake(rogue, client_ssl_context(user_proxy, None, test_ca.caDir))
    assert not outcome.ok
    assert "certificate verify failed" in outcome.clientError


def test_host_certificate_as_client(test_ca):
    outcome = tls_handshake(server(test_ca), client_ssl_context(test_ca.hostCert, test_ca.hostKey, test_ca.caDir))
    assert outcome.ok, (outcome.serverError, outcome.clientError)
    assert value(outcome.chain.getIdentityDN()) == test_ca.hostDN


def test_hostname_127_0_0_1_matches(test_ca, user_proxy):
    outcome = tls_handshake(server(test_ca), client_ssl_context(user_proxy, None, test_ca.caDir), "127.0.0.1")
    assert outcome.ok, (outcome.serverError, outcome.clientError)

"""X509Chain, X509Certificate and the test CA: loading, identity, group, proxies and proxies of proxies."""

from __future__ import annotations

import datetime
import os
import stat

from M2Crypto import X509

from DIRAC.Core.Security.TestCA import TestCA
from DIRAC.Core.Security.X509Certificate import (
    DIRAC_GROUP_OID,
    PROXY_CERT_INFO_OID,
    PROXY_INHERIT_ALL_OID,
    X509Certificate,
    decodeDIRACGroup,
    decodeProxyPolicyLanguage,
    utcNow,
)
from DIRAC.Core.Security.X509Chain import X509Chain
from security_fixtures import make_expired_proxy


def value(result):
    assert result["OK"], result.get("Message")
    return result["Value"]


def load_user(cred) -> X509Chain:
    chain = X509Chain()
    value(chain.loadChainFromFile(cred.cert))
    value(chain.loadKeyFromFile(cred.key))
    return chain


def load_proxy(path) -> X509Chain:
    chain = X509Chain()
    value(chain.loadProxyFromFile(str(path)))
    return chain


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# the test CA --------------------------------------------------------------------------------------
def test_ca_layout(test_ca):
    ca = test_ca.ca
    caCert = X509.load_cert(ca.caCertPath)
    hashName = f"{caCert.get_subject().as_hash():08x}.0"
    assert sorted(os.listdir(ca.caDir)) == sorted([hashName, "DIRAC_Test_CA.pem"])
    assert not any("key" in name for name in os.listdir(ca.caDir)), "the CA key must not be in the trusted dir"
    assert mode(ca.caKeyPath) == 0o600
    assert mode(test_ca.hostKey) == 0o600
    assert mode(test_ca.users["alice"].key) == 0o600
    assert caCert.check_ca()


def test_host_certificate(test_ca):
    cert = X509.load_cert(test_ca.hostCert)
    assert str(cert.get_subject()) == "/O=Grid/OU=DIRAC-Test/CN=localhost"
    sans = cert.get_ext("subjectAltName").get_value()
    assert "DNS:localhost" in sans and "IP Address:127.0.0.1" in sans
    eku = cert.get_ext("extendedKeyUsage").get_value()
    assert "TLS Web Server Authentication" in eku and "TLS Web Client Authentication" in eku
    assert cert.verify(X509.load_cert(test_ca.caCert).get_pubkey()) == 1


def test_user_certificate(test_ca):
    alice = test_ca.users["alice"]
    assert alice.dn == "/O=Grid/OU=DIRAC-Test/CN=alice"
    chain = load_user(alice)
    assert value(chain.isProxy()) is False
    assert value(chain.getIdentityDN()) == alice.dn
    assert value(chain.getDIRACGroup()) is None
    assert "Digital Signature" in X509.load_cert(alice.cert).get_ext("keyUsage").get_value()
    assert value(chain.getIssuerCert()).getSubjectDN()["Value"] == alice.dn


def test_ca_reuses_existing_folder_and_expired_certificates(tmp_path):
    first = TestCA(str(tmp_path / "ca"))
    first.createCA()
    again = TestCA(str(tmp_path / "ca"))
    again.createCA()
    assert open(first.caCertPath).read() == open(again.caCertPath).read()
    cert, key, dn = again.createUser("old", dnSuffix="/emailAddress=old@example.org", expired=True)
    assert dn == "/O=Grid/OU=DIRAC-Test/CN=old/emailAddress=old@example.org"
    chain = load_user(type("Cred", (), {"cert": cert, "key": key}))
    assert value(chain.hasExpired()) is True
    assert value(chain.getRemainingSecs()) == 0


# proxies -------------------------------------------------------------------------------------------
def test_proxy_generation(test_ca, tmp_path):
    alice = test_ca.users["alice"]
    path = tmp_path / "proxy"
    assert value(load_user(alice).generateProxyToFile(str(path), 3600, diracGroup="dirac_user")) == str(path)
    assert mode(path) == 0o600
    proxy = load_proxy(path)
    assert value(proxy.isProxy()) is True
    assert value(proxy.getIdentityDN()) == alice.dn
    assert value(proxy.getDIRACGroup()) == "dirac_user"
    assert 3500 < value(proxy.getRemainingSecs()) <= 3600
    assert value(proxy.getNumCertsInChain()) == 2

    leaf = value(proxy.getCertInChain(0))
    subject = value(leaf.getSubjectDN())
    assert subject.startswith(alice.dn + "/CN=") and subject[len(alice.dn) + 4 :].isdigit()
    assert value(leaf.getIssuerDN()) == alice.dn
    extensions = value(leaf.getExtensions())
    critical, pci = extensions[PROXY_CERT_INFO_OID]
    assert critical is True
    assert decodeProxyPolicyLanguage(pci) == PROXY_INHERIT_ALL_OID
    assert value(leaf.getProxyPolicyLanguage()) == PROXY_INHERIT_ALL_OID
    assert decodeDIRACGroup(extensions[DIRAC_GROUP_OID][1]) == "dirac_user"
    assert value(proxy.getIssuerCert()).getSubjectDN()["Value"] == alice.dn


def test_proxy_policy_language_is_inherit_all(user_proxy):
    leaf = value(load_proxy(user_proxy).getCertInChain(0))
    text = leaf.x509.as_text()
    assert "Policy Language: Inherit all" in text
    assert "Proxy Certificate Information: critical" in text


def test_proxy_of_proxy(test_ca, user_proxy, tmp_path):
    first = load_proxy(user_proxy)
    second = load_proxy(value(first.generateProxyToFile(str(tmp_path / "pp"), 7200)))
    assert value(second.getNumCertsInChain()) == 3
    assert value(second.getIdentityDN()) == test_ca.users["alice"].dn
    assert value(second.getDIRACGroup()) == "dirac_user", "the group is kept when none is given"
    assert value(second.getNotAfterDate()) <= value(first.getNotAfterDate()), "never beyond the signer"
    leaf = value(second.getCertInChain(0))
    assert value(leaf.getIssuerDN()) == value(value(first.getCertInChain(0)).getSubjectDN())

    third = load_proxy(value(second.generateProxyToFile(str(tmp_path / "ppp"), 60, diracGroup="dirac_user")))
    assert value(third.getDIRACGroup()) == "dirac_user"  # repeating the group is fine
    assert value(third.getRemainingSecs()) <= 60
    refused = second.generateProxyToFile(str(tmp_path / "pppp"), 60, diracGroup="dirac_admin")
    assert not refused["OK"] and "cannot change group" in refused["Message"]
    assert not (tmp_path / "pppp").exists()


def test_proxy_lifetime_capped_by_user_certificate(tmp_path):
    ca = TestCA(str(tmp_path / "ca"))
    cert, key, _ = ca.createUser("shortlived", validityDays=1)
    chain = load_user(type("Cred", (), {"cert": cert, "key": key}))
    proxy = load_proxy(value(chain.generateProxyToFile(str(tmp_path / "p"), 30 * 24 * 3600)))
    assert value(proxy.getNotAfterDate()) == value(value(chain.getCertInChain(0)).getNotAfterDate())


def test_proxy_in_memory_and_string_roundtrip(test_ca):
    chain = load_user(test_ca.users["bob"])
    proxy = value(chain.generateChainFromProxy(600, "dirac_user"))
    pem = value(proxy.dumpAllToString())
    assert pem.count("BEGIN CERTIFICATE") == 2 and "PRIVATE KEY" in pem
    again = X509Chain()
    value(again.loadProxyFromString(pem))
    assert value(again.getCredentials(withRegistryInfo=False))["identity"] == test_ca.users["bob"].dn
    assert value(again.hash()) == value(proxy.hash())
    assert value(again.isValidProxy()) is True
    assert value(again.getPEMAsString()) == pem


def test_credentials_without_registry(user_proxy, test_ca):
    creds = value(load_proxy(user_proxy).getCredentials(ignoreDefault=True, withRegistryInfo=False))
    assert creds["identity"] == creds["DN"] == test_ca.users["alice"].dn
    assert creds["subject"].startswith(creds["identity"] + "/CN=")
    assert creds["issuer"] == creds["identity"]
    assert creds["isProxy"] is True and creds["group"] == "dirac_user"
    assert 0 < creds["secondsLeft"] <= 3600
    assert creds["notAfter"] > utcNow()


def test_from_der_list(user_proxy, test_ca):
    proxy = load_proxy(user_proxy)
    ders = [cert.asDER() for cert in value(proxy.getCertList())]
    ders.append(X509.load_cert(test_ca.caCert).as_der())  # get_verified_chain() ends with the CA
    chain = value(X509Chain.fromDERList(ders))
    assert value(chain.getIdentityDN()) == test_ca.users["alice"].dn
    assert value(chain.getDIRACGroup()) == "dirac_user"
    assert value(chain.getIssuerCert()).getSubjectDN()["Value"] == test_ca.users["alice"].dn
    assert value(chain.getNumCertsInChain()) == 3
    assert not chain.getPKeyObj()["OK"], "a chain received from a peer has no key"


def test_expired_proxy_is_reported(test_ca, tmp_path):
    alice = test_ca.users["alice"]
    path = make_expired_proxy(alice.cert, alice.key, tmp_path / "old")
    proxy = load_proxy(path)
    assert value(proxy.hasExpired()) is True
    assert value(proxy.getRemainingSecs()) == 0
    result = proxy.isValidProxy()
    assert not result["OK"] and "expired" in result["Message"]
    result = proxy.generateProxyToString(600)
    assert not result["OK"] and "expired" in result["Message"]


# errors are values ----------------------------------------------------------------------------------
def test_errors_are_values(test_ca, tmp_path):
    alice, bob = test_ca.users["alice"], test_ca.users["bob"]
    chain = X509Chain()
    for result in (
        chain.getIdentityDN(),
        chain.generateProxyToString(60),
        chain.dumpAllToString(),
        chain.loadChainFromFile(str(tmp_path / "missing.pem")),
        chain.loadChainFromString("no pem here"),
        X509Chain.fromDERList([b"not der"]),
        X509Chain.fromDERList([]),
    ):
        assert result["OK"] is False and result["Message"]
    assert "missing.pem" in chain.loadChainFromFile(str(tmp_path / "missing.pem"))["Message"]

    value(chain.loadChainFromFile(alice.cert))
    mismatch = chain.loadKeyFromFile(bob.key)
    assert not mismatch["OK"] and "does not match" in mismatch["Message"]
    noKey = chain.generateProxyToString(60)
    assert not noKey["OK"] and "no private key" in noKey["Message"]
    value(chain.loadKeyFromFile(alice.key))
    for lifetime in (0, -5, "1h", None):
        result = chain.generateProxyToString(lifetime)
        assert not result["OK"] and "lifetime" in result["Message"]
    assert not chain.getCertInChain(7)["OK"]
    assert not chain.generateProxyToFile(str(tmp_path / "no" / "such" / "dir"), 60)["OK"]


def test_x509certificate_dates(test_ca):
    cert = X509Certificate()
    value(cert.loadFromFile(test_ca.users["alice"].cert))
    notBefore, notAfter = value(cert.getNotBeforeDate()), value(cert.getNotAfterDate())
    assert notBefore < utcNow() < notAfter
    assert notAfter - notBefore > datetime.timedelta(days=300)
    assert value(cert.hasExpired()) is False
    assert not X509Certificate().getSubjectDN()["OK"]

"""Registry helpers, credential look-ups through the registry, locations and getProxyInfo."""

from __future__ import annotations

import os

from DIRAC.ConfigurationSystem.Client.Helpers import Registry
from DIRAC.Core.Security import Locations, Properties
from DIRAC.Core.Security.ProxyInfo import formatProxyInfoAsString, formatSeconds, getProxyInfo
from DIRAC.Core.Security.X509Chain import X509Chain


def value(result):
    assert result["OK"], result.get("Message")
    return result["Value"]


def test_users_and_dns(security_cfg, test_ca):
    alice = test_ca.users["alice"]
    assert value(Registry.getUsernameForDN(alice.dn)) == "alice"
    assert value(Registry.getDNForUsername("alice")) == [alice.dn]
    assert sorted(Registry.getAllUsers()) == ["alice", "bob"]
    unknown = Registry.getUsernameForDN("/O=Nobody/CN=x")
    assert not unknown["OK"] and "/O=Nobody/CN=x" in unknown["Message"]
    assert not Registry.getDNForUsername("carol")["OK"]


def test_groups(security_cfg, test_ca):
    assert value(Registry.getGroupsForUser("alice")) == ["dirac_admin", "dirac_user"]
    assert value(Registry.getGroupsForUser("bob")) == ["dirac_user"]
    assert value(Registry.getGroupsForDN(test_ca.users["bob"].dn)) == ["dirac_user"]
    assert value(Registry.getGroupsForUser("carol")) == []
    assert Registry.getUsersInGroup("dirac_user") == ["alice", "bob"]
    assert Registry.getVOForGroup("dirac_admin") == "testvo"
    assert value(Registry.getVOForUser("alice")) == ["testvo"]
    assert value(Registry.getGroupsForVO("testvo")) == ["dirac_admin", "dirac_user"]
    assert Registry.getGroupOption("dirac_user", "VO", "") == "testvo"
    assert Registry.getGroupOption("dirac_user", "Missing", "dflt") == "dflt"


def test_properties(security_cfg):
    assert Registry.getPropertiesForGroup("dirac_admin") == [
        Properties.CS_ADMINISTRATOR,
        Properties.SERVICE_ADMINISTRATOR,
        Properties.FC_MANAGEMENT,
    ]
    assert Registry.getPropertiesForGroup("nogroup", ["x"]) == ["x"]
    assert Registry.getPropertiesForGroup("nogroup") == []
    assert Registry.getPropertiesForHost("localhost") == [Properties.TRUSTED_HOST]
    assert Registry.getPropertiesForHost("elsewhere", None) == []
    assert Registry.getPropertiesForEntity("hosts", name="localhost") == ["TrustedHost"]
    assert Properties.NORMAL_USER == "NormalUser" and Properties.FC_MANAGEMENT == "FileCatalogManagement"


def test_hosts_and_default_groups(security_cfg, test_ca):
    assert value(Registry.getHostnameForDN(test_ca.hostDN)) == "localhost"
    assert not Registry.getHostnameForDN(test_ca.users["alice"].dn)["OK"]
    assert value(Registry.getHosts()) == ["localhost"]
    assert value(Registry.findDefaultGroupForDN(test_ca.users["alice"].dn)) == "dirac_user"
    assert value(Registry.findDefaultGroupForUser("bob")) == "dirac_user"
    assert not Registry.findDefaultGroupForUser("carol")["OK"]
    assert not Registry.findDefaultGroupForDN("/O=Nobody/CN=x")["OK"]


def test_credentials_with_registry(security_cfg, test_ca, tmp_path):
    proxy = X509Chain()
    value(proxy.loadProxyFromFile(test_ca.proxy("alice", "dirac_admin", 600, tmp_path / "p")))
    creds = value(proxy.getCredentials())
    assert creds["username"] == "alice" and creds["group"] == "dirac_admin"
    assert creds["validDN"] and creds["validGroup"]
    assert "CSAdministrator" in creds["groupProperties"]

    # bob holding a proxy with a group he does not belong to: valid DN, invalid group
    forged = X509Chain()
    value(forged.loadProxyFromFile(test_ca.proxy("bob", "dirac_admin", 600, tmp_path / "b")))
    creds = value(forged.getCredentials())
    assert creds["username"] == "bob" and creds["validDN"] and not creds["validGroup"]

    # no group in the proxy: the default group unless ignoreDefault
    plain = X509Chain()
    value(plain.loadProxyFromFile(test_ca.proxy("bob", None, 600, tmp_path / "n")))
    assert value(plain.getCredentials())["group"] == "dirac_user"
    assert "group" not in value(plain.getCredentials(ignoreDefault=True))
    assert value(plain.getDIRACGroup(ignoreDefault=False)) == "dirac_user"

    host = X509Chain()
    value(host.loadChainFromFile(test_ca.hostCert))
    creds = value(host.getCredentials())
    assert creds["group"] == "hosts" and creds["hostname"] == "localhost"
    assert creds["groupProperties"] == ["TrustedHost"] and creds["validDN"]


def test_credentials_of_unknown_user(security_cfg, unknown_ca, tmp_path):
    proxy = X509Chain()
    value(proxy.loadProxyFromFile(unknown_ca.proxy("mallory", "dirac_user", 600, tmp_path / "m")))
    creds = value(proxy.getCredentials())
    assert creds["validDN"] is False and creds["validGroup"] is False and "username" not in creds


def test_proxy_info(security_cfg, test_ca, user_proxy, monkeypatch):
    monkeypatch.setenv("X509_USER_PROXY", user_proxy)
    info = value(getProxyInfo())
    assert info["path"] == user_proxy and info["username"] == "alice"
    assert info["identity"] == test_ca.users["alice"].dn and info["group"] == "dirac_user"
    assert isinstance(info["chain"], X509Chain) and info["isProxy"]
    assert info["groupProperties"] == ["NormalUser"]
    text = formatProxyInfoAsString(info)
    assert "username    : alice" in text and f"path        : {user_proxy}" in text
    assert "timeleft    : 00:5" in text or "timeleft    : 01:00:00" in text
    assert value(getProxyInfo(info["chain"]))["identity"] == info["identity"]

    missing = getProxyInfo(str(user_proxy) + ".missing")
    assert not missing["OK"] and ".missing" in missing["Message"]
    assert formatSeconds(90061) == "25:01:01"


def test_locations(security_cfg, test_ca, user_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("X509_USER_PROXY", user_proxy)
    assert Locations.getProxyLocation() == user_proxy
    assert Locations.getDefaultProxyLocation() == user_proxy
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "none"))
    assert Locations.getDefaultProxyLocation() == str(tmp_path / "none")
    default = f"/tmp/x509up_u{os.getuid()}"
    assert Locations.getProxyLocation() == (default if os.path.isfile(default) else False)
    monkeypatch.delenv("X509_USER_PROXY")
    assert Locations.getDefaultProxyLocation() == default

    assert Locations.getHostCertificateAndKeyLocation() == (test_ca.hostCert, test_ca.hostKey)
    assert Locations.getCAsLocation() == test_ca.caDir
    monkeypatch.setenv("X509_CERT_DIR", str(tmp_path))
    assert Locations.getCAsLocation() == str(tmp_path)

    alice = test_ca.users["alice"]
    monkeypatch.setenv("X509_USER_CERT", alice.cert)
    monkeypatch.setenv("X509_USER_KEY", alice.key)
    assert Locations.getCertificateAndKeyLocation() == (alice.cert, alice.key)
    monkeypatch.setenv("X509_USER_KEY", str(tmp_path / "nokey.pem"))
    assert Locations.getCertificateAndKeyLocation() is False

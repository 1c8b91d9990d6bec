"""Who a proxy chain is, as the server and ``getProxyInfo`` read it, against hostile chains.

Whoever holds a delegated proxy (a job, a service acting for the user) holds its key and can
sign a sub-proxy with any extension. The group of the chain must stay the one the user chose
in the proxy nearest the user certificate; independent proxies carry none of the user's rights.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import catalog_site  # noqa: E402

from DIRAC.Core.Security.ProxyInfo import getProxyInfo  # noqa: E402
from DIRAC.Core.Security.X509Chain import X509Chain  # noqa: E402

site = catalog_site.site
#: RFC 3820 id-ppl-independent and the Globus limited-proxy policy language
PROXY_INDEPENDENT_OID = "1.3.6.1.5.5.7.21.2"
PROXY_LIMITED_OID = "1.3.6.1.4.1.3536.1.1.1.9"
CHANGE_REFUSED = "a delegated proxy cannot change group"


def value(result: dict):
    assert result["OK"], result
    return result["Value"]


def alice_proxy(site) -> str:
    return site.proxies[("alice", "dirac_user")]


def test_delegated_proxy_claiming_another_group_is_refused(site, tmp_path):
    # alice's job holds her dirac_user proxy; it signs a sub-proxy claiming her admin group
    forged = catalog_site.forge_proxy(alice_proxy(site), tmp_path / "forged", "dirac_admin")
    attacker = site.client("alice", proxy=forged)
    result = attacker.createDirectory("/testvo/made-by-a-delegate")
    assert not result["OK"] and CHANGE_REFUSED in result["Message"], result
    assert "dirac_admin" in result["Message"] and "dirac_user" in result["Message"]
    assert value(site.admin.exists("/testvo/made-by-a-delegate"))["Successful"] == {"/testvo/made-by-a-delegate": False}
    info = getProxyInfo(forged)
    assert not info["OK"] and CHANGE_REFUSED in info["Message"]


def test_a_group_cannot_be_added_below_a_proxy_without_one(site, tmp_path):
    groupless = site.env.proxy("alice", None, path=tmp_path / "groupless")
    forged = catalog_site.forge_proxy(groupless, tmp_path / "forged", "dirac_admin")
    result = site.client("alice", proxy=forged).createDirectory("/testvo/added-group")
    assert not result["OK"] and CHANGE_REFUSED in result["Message"]
    assert not getProxyInfo(forged)["OK"]
    assert value(site.admin.exists("/testvo/added-group"))["Successful"] == {"/testvo/added-group": False}


def test_later_proxies_may_repeat_or_omit_the_group(site, tmp_path):
    repeated = catalog_site.forge_proxy(alice_proxy(site), tmp_path / "repeated", "dirac_user")
    omitted = catalog_site.forge_proxy(repeated, tmp_path / "omitted", None)
    for proxy in (repeated, omitted):
        whoami = value(site.client("alice", proxy=proxy)._getRPC().whoami())
        assert (whoami["username"], whoami["group"]) == ("alice", "dirac_user")
        assert value(getProxyInfo(proxy))["group"] == "dirac_user"


def test_our_own_generator_refuses_to_change_group(site, tmp_path):
    chain = X509Chain()
    value(chain.loadProxyFromFile(alice_proxy(site)))
    target = tmp_path / "sub"
    result = chain.generateProxyToFile(str(target), 600, diracGroup="dirac_admin")
    assert not result["OK"] and CHANGE_REFUSED in result["Message"]
    assert not target.exists()


def test_independent_proxy_is_refused(site, tmp_path):
    independent = catalog_site.forge_proxy(alice_proxy(site), tmp_path / "indep", None, PROXY_INDEPENDENT_OID)
    result = site.client("alice", proxy=independent).exists("/testvo")
    assert not result["OK"] and f"policy language {PROXY_INDEPENDENT_OID}" in result["Message"]
    info = getProxyInfo(independent)
    assert not info["OK"] and "only inheritAll and limited proxies" in info["Message"]


def test_limited_proxy_is_reported_and_stays_limited(site, tmp_path):
    limited = catalog_site.forge_proxy(alice_proxy(site), tmp_path / "limited", None, PROXY_LIMITED_OID)
    assert value(getProxyInfo(limited))["isLimitedProxy"] is True
    below = X509Chain()
    value(below.loadProxyFromFile(limited))
    child = value(below.generateChainFromProxy(600))
    assert value(child.isLimitedProxy()) is True
    assert value(getProxyInfo(alice_proxy(site)))["isLimitedProxy"] is False
    whoami = value(site.client("alice", proxy=limited)._getRPC().whoami())
    assert whoami["group"] == "dirac_user"


def test_malformed_group_extension_is_refused(site, tmp_path):
    # the extension holds an INTEGER, not a string: no group can be read from it, so the chain is refused
    forged = catalog_site.forge_proxy(alice_proxy(site), tmp_path / "odd", None, groupExtension="ASN1:INTEGER:42")
    info = getProxyInfo(forged)
    assert not info["OK"] and "Malformed DIRAC group extension" in info["Message"]
    result = site.client("alice", proxy=forged).exists("/testvo")
    assert not result["OK"] and "Malformed DIRAC group extension" in result["Message"]


def test_extensions_are_read_by_cryptography_not_a_hand_written_der_walker():
    assert importlib.util.find_spec("DIRAC.Core.Security.DER") is None
    assert importlib.util.find_spec("cryptography.hazmat.asn1") is not None


def test_proxy_from_an_untrusted_ca_is_refused(site, unknown_ca, tmp_path):
    mallory = unknown_ca.proxy("mallory", "dirac_admin", 600, tmp_path / "mallory")
    result = site.client("alice", proxy=mallory).createDirectory("/testvo/mallory")
    assert not result["OK"]
    assert value(site.admin.exists("/testvo/mallory"))["Successful"] == {"/testvo/mallory": False}

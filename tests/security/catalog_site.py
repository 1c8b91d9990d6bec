"""A site like the README's for the security tests, and the hostile credentials aimed at it.

* ``Site``: a test CA with users alice and bob (group ``dirac_user``), carol (group
  ``ext_user``, same VO), adam (``dirac_admin``, the catalog manager), a
  ``DataManagement/FileCatalog`` service subprocess on a fresh SQLite file (the cfg
  also names it as the master catalog of the facade, as the commands read it),
  and a proxy per (user, group).
* ``site`` fixture: one ``Site`` per test module, this process reading its cfg; the
  service is stopped by its PID after.
* ``forge_proxy(signer, path, group, language)``: a proxy signed with the key of another
  proxy, as whoever holds a delegated proxy can make one, with any group and any
  RFC 3820 policy language: the attacker's tool, not our generator (which refuses).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from DIRAC.Core.Security.X509Certificate import (
    DIRAC_GROUP_OID,
    PROXY_INHERIT_ALL_OID,
    buildCertificate,
    extendName,
    newKey,
    randomSerial,
    utcNow,
    writePrivateFile,
)
from DIRAC.Core.Security.X509Chain import X509Chain
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

VO = "testvo"
ROLES = (("alice", "dirac_user"), ("bob", "dirac_user"), ("carol", "ext_user"), ("adam", "dirac_admin"))
HOMES = {user: f"/{VO}/user/{user[0]}/{user}" for user, _ in ROLES}

#: The third user, in another group of the same VO, and a separate administrator.
EXTRA_REGISTRY = """
Registry
{{
  Users
  {{
    carol
    {{
      DN = {carol}
    }}
    adam
    {{
      DN = {adam}
    }}
  }}
  Groups
  {{
    ext_user
    {{
      Users = carol
      Properties = NormalUser
      VO = testvo
    }}
    dirac_admin
    {{
      Users = alice, adam
    }}
  }}
}}
"""


@dataclass
class Site:
    """The running site: its CA, the catalog service, the cfg the commands read, the proxies."""

    env: object
    service: object
    cfgPath: Path
    folder: Path
    proxies: dict[tuple[str, str], str] = field(default_factory=dict)

    def client(self, user: str, group: str | None = None, proxy: str | None = None) -> FileCatalogClient:
        """A catalog client presenting ``proxy`` or the proxy of (user, group)."""
        group = group or dict(ROLES)[user]
        return FileCatalogClient(url=self.service.url(), proxyLocation=proxy or self.proxies[(user, group)])

    @property
    def admin(self) -> FileCatalogClient:
        return self.client("adam")


def start_site(folder: Path, launcher) -> Site:
    """A CA, users, the catalog service and proxies in ``folder`` (the service started by ``launcher``)."""
    from catalog_fixtures import systems_cfg
    from rpc_fixtures import free_port, service_cfg
    from security_fixtures import make_env

    env = make_env(folder / "ca", "DIRAC Security Site CA", [user for user, _ in ROLES])
    port = free_port()
    extra = systems_cfg(folder, catalogPort=port, facade=True) + EXTRA_REGISTRY.format(
        carol=env.users["carol"].dn, adam=env.users["adam"].dn
    )
    cfgPath = folder / "dirac.cfg"
    cfgPath.write_text(service_cfg(env, {}, extra=extra))
    service = launcher.start("DataManagement/FileCatalog", cfgPath, port=port)
    proxies = {(user, group): env.proxy(user, group, path=folder / f"{user}-{group}.pem") for user, group in ROLES}
    return Site(env=env, service=service, cfgPath=cfgPath, folder=folder, proxies=proxies)


@pytest.fixture(scope="module")
def site(tmp_path_factory, rpc_launcher_module):
    """The site of the README for one test module, this process configured as its client
    (service stopped by its PID at the end)."""
    from catalog_fixtures import client_environment

    running = start_site(tmp_path_factory.mktemp("site"), rpc_launcher_module)
    with client_environment(running.cfgPath):
        yield running


def forge_proxy(
    signer: str,
    path: Path,
    group: str | None,
    language: str = PROXY_INHERIT_ALL_OID,
    lifetime: int = 3600,
    groupExtension: str | None = None,
) -> str:
    """Write a proxy signed by the proxy file ``signer`` carrying ``group`` and policy ``language``.

    ``groupExtension`` replaces the group extension's OpenSSL value (``ASN1:IA5STRING:<group>``).
    """
    chain = X509Chain()
    loaded = chain.loadProxyFromFile(signer)
    assert loaded["OK"], loaded
    signerCert = chain.getCertInChain(0)["Value"].x509
    signerKey = chain.getPKeyObj()["Value"]
    extensions = [
        ("proxyCertInfo", f"language:{language}", True),
        ("keyUsage", "digitalSignature,keyEncipherment", True),
    ]
    if group or groupExtension:
        extensions.append((DIRAC_GROUP_OID, groupExtension or f"ASN1:IA5STRING:{group}", False))
    serial = randomSerial()
    now = utcNow()
    key = newKey()
    cert = buildCertificate(
        extendName(signerCert.get_subject(), "CN", str(serial)),
        key,
        signerKey,
        now - datetime.timedelta(minutes=5),
        min(now + datetime.timedelta(seconds=lifetime), signerCert.get_not_after().get_datetime()),
        issuerCert=signerCert,
        extensions=extensions,
        serial=serial,
    )
    pem = cert.as_pem() + key.as_pem(cipher=None) + chain.dumpChainToString()["Value"].encode()
    writePrivateFile(str(path), pem)
    return str(path)

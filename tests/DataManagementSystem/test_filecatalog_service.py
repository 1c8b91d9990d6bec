"""The FileCatalog service over real HTTPS RPC: a dirac-service subprocess, real proxies, delegation."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest
from diraccfg import CFG

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from catalog_fixtures import running_catalog  # noqa: E402
from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402

ALICE_HOME = "/testvo/user/a/alice"
BOB_HOME = "/testvo/user/b/bob"


def info(size: int = 5) -> dict:
    return {"SE": "SE-A", "Size": size, "Checksum": "0a0b0c0d", "GUID": "", "PFN": ""}


@pytest.fixture(scope="module")
def catalog(test_ca, tmp_path_factory, catalog_url_module):
    """A FileCatalog service (from ConfigTemplate.cfg) on a fresh database of each backend; the test process
    uses its cfg."""
    folder = tmp_path_factory.mktemp("filecatalog")
    with running_catalog(test_ca, folder, dbURL=catalog_url_module) as (service, _cfgPath, proxies):
        yield service, proxies, test_ca
    gConfigurationData.reset()  # forget the catalogs the tests merged in: the next backend starts clean


def client(catalog, user: str, group: str = "dirac_user", **kwargs) -> FileCatalogClient:
    service, proxies, _env = catalog
    return FileCatalogClient(url=service.url(), proxyLocation=proxies[(user, group)], **kwargs)


def hostClient(catalog, **kwargs) -> FileCatalogClient:
    service, _proxies, _env = catalog
    return FileCatalogClient(url=service.url(), useCertificates=True, **kwargs)


def value(result: dict) -> dict:
    assert result["OK"], result
    return result["Value"]


def test_user_registers_and_reads_in_own_home(catalog):
    alice = client(catalog, "alice")
    lfn = f"{ALICE_HOME}/data/f1"
    assert value(alice.addFile({lfn: info(7)})) == {"Successful": {lfn: True}, "Failed": {}}
    meta = value(alice.getFileMetadata(lfn))["Successful"][lfn]
    assert (meta["Size"], meta["Checksum"], meta["Owner"], meta["OwnerGroup"]) == (7, "0a0b0c0d", "alice", "dirac_user")
    assert isinstance(meta["CreationDate"], datetime.datetime)
    assert value(alice.getReplicas([lfn]))["Successful"] == {lfn: {"SE-A": ""}}
    listing = value(alice.listDirectory(f"{ALICE_HOME}/data", True))["Successful"][f"{ALICE_HOME}/data"]
    assert listing["Files"][lfn]["Replicas"] == {"SE-A": ""}
    home = value(alice.getDirectoryMetadata(ALICE_HOME))["Successful"][ALICE_HOME]
    assert (home["Owner"], home["Mode"]) == ("alice", 0o755)


def test_user_writing_into_another_users_home_is_denied(catalog):
    alice, bob = client(catalog, "alice"), client(catalog, "bob")
    value(alice.createDirectory(ALICE_HOME))
    lfn = f"{ALICE_HOME}/from-bob"
    failed = value(bob.addFile({lfn: info()}))["Failed"]
    assert "Permission denied" in failed[lfn]
    assert value(alice.exists(lfn))["Successful"] == {lfn: False}
    assert value(bob.hasAccess([lfn], "Write"))["Successful"] == {lfn: False}
    assert value(bob.hasAccess([lfn], "getFileMetadata"))["Successful"] == {lfn: True}
    # bob's own home is created for him on first write
    assert value(bob.addFile({f"{BOB_HOME}/mine": info()}))["Successful"]


def test_catalog_manager_bypasses(catalog):
    admin = client(catalog, "alice", "dirac_admin")
    lfn = f"{BOB_HOME}/placed-by-admin"
    assert value(admin.addFile({lfn: info()}))["Successful"] == {lfn: True}
    assert value(admin.changePathOwner({lfn: "bob"}))["Successful"] == {lfn: True}
    assert value(client(catalog, "bob").removeFile(lfn))["Successful"] == {lfn: True}
    assert value(admin.createDirectory("/testvo/data"))["Successful"]
    assert "Permission denied" in value(client(catalog, "alice").createDirectory("/testvo/x"))["Failed"]["/testvo/x"]


def test_trusted_host_acts_for_a_user(catalog):
    _service, _proxies, env = catalog
    asBob = hostClient(catalog, delegatedDN=env.users["bob"].dn, delegatedGroup="dirac_user")
    whoami = value(asBob._getRPC().whoami())
    assert (whoami["username"], whoami["group"]) == ("bob", "dirac_user")
    paths = [f"{BOB_HOME}/via-host", f"{ALICE_HOME}/via-host"]
    assert value(asBob.hasAccess(paths, "addFile"))["Successful"] == {paths[0]: True, paths[1]: False}
    result = value(asBob.addFile({path: info() for path in paths}))
    assert list(result["Successful"]) == [paths[0]]
    assert "Permission denied" in result["Failed"][paths[1]]
    meta = value(client(catalog, "bob").getFileMetadata(paths[0]))["Successful"][paths[0]]
    assert meta["Owner"] == "bob"
    # the host on its own has no home and no rights in the users' tree
    assert value(hostClient(catalog).hasAccess(paths, "Write"))["Successful"] == dict.fromkeys(paths, False)


def test_delegation_refused_to_users_and_for_unknown_dns(catalog):
    _service, _proxies, env = catalog
    viaAlice = client(catalog, "alice", delegatedDN=env.users["bob"].dn, delegatedGroup="dirac_user")
    result = viaAlice.hasAccess([BOB_HOME], "Write")
    assert not result["OK"] and "delegation refused" in result["Message"]
    unknown = hostClient(catalog, delegatedDN="/CN=nobody", delegatedGroup="dirac_user")
    result = unknown.hasAccess([BOB_HOME], "Write")
    assert not result["OK"] and "delegation refused" in result["Message"]


def test_bad_input_over_rpc(catalog):
    alice = client(catalog, "alice")
    result = alice._getRPC().addFile(42)
    assert not result["OK"] and "argument 1" in result["Message"]
    failed = value(alice.addFile({"relative": info(), f"{ALICE_HOME}/x": {"SE": "A"}}))["Failed"]
    assert "absolute" in failed["relative"] and "Size" in failed[f"{ALICE_HOME}/x"]
    result = alice.hasAccess(ALICE_HOME, "teleport")
    assert not result["OK"] and "Unknown operation type" in result["Message"]


def test_facade_dispatches_to_the_service(catalog):
    service, proxies, env = catalog
    extra = CFG().loadFromDict(
        {
            "Resources": {
                "FileCatalogs": {
                    "FileCatalog": {
                        "CatalogType": "FileCatalog",
                        "CatalogURL": service.url(),
                        "Master": "True",
                        "AccessType": "Read-Write",
                        "Status": "Active",
                    }
                }
            }
        }
    )
    gConfigurationData.mergeLocal(extra)
    fc = FileCatalog(vo="testvo", proxyLocation=proxies[("alice", "dirac_user")])
    assert fc.isOK(), fc.errorMessage
    assert fc.getMasterCatalogNames()["Value"] == ["FileCatalog"]
    lfn = f"{ALICE_HOME}/facade/f"
    assert value(fc.addFile({lfn: info()})) == {"Successful": {lfn: {"FileCatalog": True}}, "Failed": {}}
    assert value(fc.getReplicas(lfn))["Successful"] == {lfn: {"SE-A": ""}}
    assert value(fc.hasAccess(lfn, "removeFile"))["Successful"] == {lfn: True}
    assert value(fc.isFile([lfn, f"{ALICE_HOME}/facade"]))["Successful"] == {lfn: True, f"{ALICE_HOME}/facade": False}
    missing = value(fc.getFileMetadata([f"{ALICE_HOME}/nothing"]))["Failed"]
    assert "No such file" in missing[f"{ALICE_HOME}/nothing"]

    asBob = FileCatalog(vo="testvo", useCertificates=True, delegatedDN=env.users["bob"].dn, delegatedGroup="dirac_user")
    result = value(asBob.removeFile(lfn))
    assert "Permission denied" in result["Failed"][lfn]["FileCatalog"]
    assert value(fc.removeFile(lfn))["Successful"] == {lfn: {"FileCatalog": True}}
    with pytest.raises(AttributeError):
        fc.noSuchMethod  # noqa: B018
    assert not FileCatalog(catalogs=["Unknown"], vo="testvo").isOK()


def test_facade_master_failure_stops_writes_and_reads_fail_over(catalog):
    service, proxies, _env = catalog
    from rpc_fixtures import free_port

    deadURL = f"https://localhost:{free_port()}/DataManagement/FileCatalog"
    gConfigurationData.mergeLocal(
        CFG().loadFromDict(
            {
                "Resources": {
                    "FileCatalogs": {
                        "DeadMaster": {"CatalogType": "FileCatalog", "CatalogURL": deadURL, "Master": "True"},
                        "Live": {"CatalogType": "FileCatalog", "CatalogURL": service.url()},
                    }
                }
            }
        )
    )
    fc = FileCatalog(catalogs=["Live", "DeadMaster"], vo="testvo", proxyLocation=proxies[("alice", "dirac_user")])
    assert fc.isOK(), fc.errorMessage
    assert [name for name, _catalog, _master in fc.getWriteCatalogs()] == ["DeadMaster", "Live"]
    lfn = f"{ALICE_HOME}/failover/f"
    result = fc.addFile({lfn: info()})
    assert not result["OK"]  # the master did not answer: nothing goes to the other catalog
    live = client(catalog, "alice")
    assert value(live.exists(lfn))["Successful"] == {lfn: False}
    # reads fall over to the catalog that answers
    value(live.addFile({lfn: info()}))
    assert value(fc.exists([lfn]))["Successful"] == {lfn: True}
    assert value(fc.getReplicas(lfn))["Successful"] == {lfn: {"SE-A": ""}}

"""Two FileCatalog services and two S3 gateways on one MariaDB, eight uploading processes at once:
afterwards the catalog and the bucket hold exactly the same files (issue 13's "many instances")."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from catalog_fixtures import client_environment, gateway_cfgs, run_processes, systems_cfg  # noqa: E402
from rpc_fixtures import ServiceLauncher, free_port  # noqa: E402

HOME = "/testvo/user/a/alice"
SHARED = f"{HOME}/many"
WRITERS = 8
FILES_EACH = 4


@pytest.fixture(scope="module")
def site(test_ca, rclone_s3_server, mariadb_server, tmp_path_factory):
    """Two catalogs and two gateways (subprocesses) on one fresh MariaDB database and one bucket."""
    folder = tmp_path_factory.mktemp("many-instances")
    url = mariadb_server.newDatabase()
    bucket = rclone_s3_server.make_bucket()
    catalogPorts, gatewayPorts = [free_port(), free_port()], [free_port(), free_port()]
    systems = systems_cfg(folder, None, gatewayPorts, facade=True, dbURL=url, catalogPorts=catalogPorts)
    serverCfg, clientCfg = gateway_cfgs(test_ca, folder, systems, rclone_s3_server, bucket)
    launcher = ServiceLauncher()
    try:
        for port in catalogPorts:
            launcher.start("DataManagement/FileCatalog", serverCfg, port=port)
        for port in gatewayPorts:
            launcher.start("DataManagement/S3Gateway", serverCfg, port=port)
        proxy = test_ca.proxy("alice", "dirac_user", path=folder / "alice.pem")
        with client_environment(clientCfg, restore=["X509_USER_PROXY"], X509_CERT_DIR=str(test_ca.caDir)):
            yield {"folder": folder, "clientCfg": clientCfg, "proxy": proxy, "caDir": str(test_ca.caDir)}
    finally:
        launcher.stopAll()
        mariadb_server.dropDatabase(url)


def _uploader(clientCfg: str, caDir: str, proxy: str, folder: str, index: int, queue) -> None:
    """Upload and register this writer's files through the gateways, then remove its first one."""
    os.environ.update(DIRACSYSCONFIG=clientCfg, X509_CERT_DIR=caDir, X509_USER_PROXY=proxy)
    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    manager = DataManager()
    problems = []
    for number in range(FILES_EACH):
        source = Path(folder) / f"w{index}-{number}.dat"
        source.write_bytes(os.urandom(1000 + number))
        result = manager.putAndRegister(f"{SHARED}/w{index}-{number}.dat", str(source), "S3-INDIRECT")
        if not result["OK"] or result["Value"]["Failed"]:
            problems.append(result.get("Message") or result["Value"]["Failed"])
    result = manager.removeFile(f"{SHARED}/w{index}-0.dat")
    if not result["OK"] or result["Value"]["Failed"]:
        problems.append(result.get("Message") or result["Value"]["Failed"])
    queue.put((index, problems))


def test_eight_uploaders_through_two_gateways_and_two_catalogs_agree(site):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    arguments = (str(site["clientCfg"]), site["caDir"], str(site["proxy"]), str(site["folder"]))
    writers = [context.Process(target=_uploader, args=(*arguments, index, queue)) for index in range(WRITERS)]
    results = dict(run_processes(writers, queue, timeout=240))
    assert results == {index: [] for index in range(WRITERS)}

    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient
    from DIRAC.Resources.Storage.StorageElement import StorageElement

    os.environ["X509_USER_PROXY"] = str(site["proxy"])
    expected = {f"{SHARED}/w{index}-{number}.dat" for index in range(WRITERS) for number in range(1, FILES_EACH)}
    listing = FileCatalogClient().listDirectory(SHARED)["Value"]["Successful"][SHARED]
    assert set(listing["Files"]) == expected
    stored = StorageElement("S3-DIRECT").listDirectory(SHARED)
    assert stored["OK"], stored
    assert set(stored["Value"]["Successful"][SHARED]["Files"]) == expected
    replicas = FileCatalogClient().getReplicas(sorted(expected))["Value"]
    assert not replicas["Failed"] and all(list(item) == ["S3-INDIRECT"] for item in replicas["Successful"].values())

"""Two FileCatalog services on one database (SQLite, MariaDB, PostgreSQL) behind the URL list,
eight writer processes at once: no lost update, no duplicate, every LFN answered; big calls in chunks."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from catalog_fixtures import run_processes, running_catalog  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402

HOME = "/testvo/user/a/alice"
WRITERS = 8
SHARED = 40
OWN = 40


def info(size: int = 5, se: str = "SE-A") -> dict:
    return {"SE": se, "Size": size, "Checksum": "0a0b0c0d", "GUID": "", "PFN": ""}


@pytest.fixture(scope="module")
def catalogs(test_ca, tmp_path_factory, catalog_url_module):
    """Two services on one fresh database; MaxLFNsPerCall 50 so that big calls must be split."""
    folder = tmp_path_factory.mktemp("instances")
    options = {"Services/FileCatalog/MaxLFNsPerCall": "50"}
    with running_catalog(test_ca, folder, dbURL=catalog_url_module, instances=2, options=options) as running:
        yield running


def _writer(cfgPath: str, caDir: str, proxy: str, url: str, index: int, queue) -> None:
    """Register the shared LFNs (same metadata for all) and own LFNs, in small calls, then add a replica."""
    os.environ.update(DIRACSYSCONFIG=cfgPath, X509_CERT_DIR=caDir)
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    client = FileCatalogClient(url=url, proxyLocation=proxy)
    problems = []
    shared = {f"{HOME}/shared/s{number}": info(number) for number in range(SHARED)}
    own = {f"{HOME}/shared/w{index}/f{number}": info(number) for number in range(OWN)}
    calls = [dict(list(shared.items())[start : start + 8]) for start in range(0, SHARED, 8)]
    calls += [dict(list(own.items())[start : start + 8]) for start in range(0, OWN, 8)]
    calls += [{lfn: {"SE": f"SE-{index}", "PFN": ""} for lfn in shared}]
    for number, lfns in enumerate(calls):
        result = (client.addReplica if number == len(calls) - 1 else client.addFile)(lfns)
        if not result["OK"]:
            problems.append(result["Message"])
        elif result["Value"]["Failed"] or len(result["Value"]["Successful"]) != len(lfns):
            problems.append(result["Value"]["Failed"])
    queue.put((index, problems))


def test_eight_writers_on_two_services_lose_nothing(catalogs, test_ca):
    services, cfgPath, proxies = catalogs
    proxy = str(proxies[("alice", "dirac_user")])
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    writers = [
        context.Process(
            target=_writer,
            args=(str(cfgPath), str(test_ca.caDir), proxy, services[index % 2].url(), index, queue),
        )
        for index in range(WRITERS)
    ]
    results = dict(run_processes(writers, queue, timeout=180))
    assert results == {index: [] for index in range(WRITERS)}
    reader = FileCatalogClient(proxyLocation=proxy)  # DataManagement/FileCatalog: the URL list of both
    shared = [f"{HOME}/shared/s{number}" for number in range(SHARED)]
    replicas = reader.getReplicas(shared)["Value"]["Successful"]
    expected = {"SE-A": "", **{f"SE-{index}": "" for index in range(WRITERS)}}
    assert replicas == dict.fromkeys(shared, expected)  # no replica lost, none twice
    listing = reader.listDirectory(f"{HOME}/shared")["Value"]["Successful"][f"{HOME}/shared"]
    assert len(listing["Files"]) == SHARED and len(listing["SubDirs"]) == WRITERS
    counters = reader.getCatalogCounters()["Value"]
    assert counters["Files"] == SHARED + WRITERS * OWN
    assert counters["Replicas"] == SHARED * (WRITERS + 1) + WRITERS * OWN


def test_big_calls_are_split_by_the_client_and_refused_whole_by_the_service(catalogs):
    services, _cfgPath, proxies = catalogs
    proxy = proxies[("alice", "dirac_user")]
    lfns = {f"{HOME}/bulk/f{number}": info(number) for number in range(230)}
    unsplit = FileCatalogClient(url=services[0].url(), proxyLocation=proxy)
    unsplit.CHUNK = 1000
    refused = unsplit.addFile(lfns)
    assert not refused["OK"] and "at most 50" in refused["Message"]
    client = FileCatalogClient(url=services[1].url(), proxyLocation=proxy)
    client.CHUNK = 50
    assert client.addFile(lfns)["Value"] == {"Successful": dict.fromkeys(lfns, True), "Failed": {}}
    sizes = client.getFileSize(list(lfns))["Value"]["Successful"]
    assert sizes == {lfn: value["Size"] for lfn, value in lfns.items()}


def test_listing_a_big_directory_goes_page_by_page(catalogs):
    services, _cfgPath, proxies = catalogs
    client = FileCatalogClient(url=services[0].url(), proxyLocation=proxies[("alice", "dirac_user")])
    client.CHUNK = 50
    lfns = {f"{HOME}/paged/f{number:04d}": info(number) for number in range(2500)}
    assert not client.addFile(lfns)["Value"]["Failed"]
    page = client.listDirectoryPage(f"{HOME}/paged", False, "", 1000)["Value"]["Successful"][f"{HOME}/paged"]
    assert len(page["Files"]) == 1000 and page["Next"] == f"F{'f0999'}"
    listing = client.listDirectory(f"{HOME}/paged")["Value"]["Successful"][f"{HOME}/paged"]
    assert sorted(listing["Files"]) == sorted(lfns)

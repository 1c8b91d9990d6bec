"""File catalog set-up shared by the tests and the benchmarks (load with ``tests/`` on ``sys.path``).

* ``DBCatalog(db, credentials)``: the FileCatalog facade's methods that ``DataManager`` uses, over a
  real ``FileCatalogDB`` called with one user's fixed credentials (``DataManager(fileCatalog=...)``).
* ``systems_cfg(folder, ...)``: cfg text of ``/Systems/DataManagement`` from the real
  ``ConfigTemplate.cfg`` with the catalog DB on a fresh SQLite file in ``folder``, extra options,
  optional ``URLs`` (FileCatalog, S3Gateway) and, with ``facade=True``, the facade's
  ``/Resources/FileCatalogs/FileCatalog`` (the master catalog).
* ``client_environment(cfgPath, restore=(), **variables)``: a context manager pointing this process
  at ``cfgPath`` (``DIRACSYSCONFIG`` and other environment variables), everything restored after.
* ``user_proxies(ca, folder, roles)``: ``{(user, group): proxy path}`` made by the test CA.
* ``running_catalog(ca, folder, facade=False)``: a ``DataManagement/FileCatalog`` service
  subprocess and this process configured for it; yields ``(service, cfgPath, proxies)`` and
  stops the service by its PID after.
* ``gateway_cfgs(ca, folder, systems, server, bucket)``: the server and client cfg files of a
  catalog + S3 gateway site where one bucket is two SEs, ``S3-INDIRECT`` (keys only on the server)
  and ``S3-DIRECT`` (keys on the client too).
* ``run_processes(processes, queue, timeout)``: start writer processes, return one result each
  from ``queue``, and always end them (a bounded join, then a kill by PID).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CATALOG_TEMPLATE = TESTS.parent / "src/DIRAC/DataManagementSystem/ConfigTemplate.cfg"
FACADE_CATALOGS = "Resources\n{\n FileCatalogs\n {\n  FileCatalog\n  {\n   Master = True\n  }\n }\n}\n"
#: alice and bob as users, alice as catalog administrator
ROLES = (("alice", "dirac_user"), ("bob", "dirac_user"), ("alice", "dirac_admin"))


class DBCatalog:
    """The FileCatalog facade's methods over a real FileCatalogDB, called with fixed credentials."""

    def __init__(self, db, credentials: dict) -> None:
        self.db = db
        self.credentials = credentials

    def addFile(self, lfns):
        return self.db.addFile(lfns, self.credentials)

    def addReplica(self, lfns):
        return self.db.addReplica(lfns, self.credentials)

    def removeFile(self, lfns):
        return self.db.removeFile(lfns, self.credentials)

    def removeReplica(self, lfns):
        return self.db.removeReplica(lfns, self.credentials)

    def getReplicas(self, lfns, allStatus=False):
        return self.db.getReplicas(lfns, self.credentials, allStatus)

    def getFileMetadata(self, lfns):
        return self.db.getFileMetadata(lfns, self.credentials)

    def exists(self, lfns):
        return self.db.exists(lfns, self.credentials)

    def hasAccess(self, paths, opType):
        return self.db.hasAccess(paths, opType, self.credentials)


def systems_cfg(
    folder: Path,
    catalogPort: int | None = None,
    gatewayPorts: Iterable[int] = (),
    options: dict[str, str] | None = None,
    facade: bool = False,
    dbFile: str = "fc.sqlite",
    dbURL: str | None = None,
    catalogPorts: Iterable[int] = (),
) -> str:
    """``/Systems/DataManagement`` from ConfigTemplate.cfg, its DB on ``folder/dbFile`` (or at ``dbURL``);
    the FileCatalog URL list names ``catalogPort`` and ``catalogPorts``; see the module doc."""
    from diraccfg import CFG

    from s3_fixtures import merge_cfg

    system = CFG().loadFromFile(str(CATALOG_TEMPLATE))
    system.setOption("Databases/FileCatalogDB/URL", dbURL or f"sqlite:///{Path(folder) / dbFile}")
    for name, value in (options or {}).items():
        system.setOption(name, value)
    urls = {}
    catalogs = [f"https://127.0.0.1:{port}/DataManagement/FileCatalog" for port in [catalogPort, *catalogPorts] if port]
    if catalogs:
        urls["FileCatalog"] = ", ".join(catalogs)
    gateways = [f"https://127.0.0.1:{port}/DataManagement/S3Gateway" for port in gatewayPorts]
    if gateways:
        urls["S3Gateway"] = ", ".join(gateways)
    if urls:
        system.createNewSection("URLs")
        for name, url in urls.items():
            system["URLs"].setOption(name, url)
    wrapped = CFG()
    wrapped.createNewSection("Systems")
    wrapped["Systems"].createNewSection("DataManagement", contents=system)
    return merge_cfg(str(wrapped), FACADE_CATALOGS) if facade else str(wrapped)


@contextlib.contextmanager
def client_environment(cfgPath: str | Path, restore: Iterable[str] = (), **variables: str) -> Iterator[None]:
    """This process reads ``cfgPath`` (and the given environment variables) until the block ends.

    The variables named in ``restore`` are not set, but put back as they were after the block
    (for those the block's code changes itself).
    """
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    settings = {"DIRACSYSCONFIG": str(cfgPath), **variables}
    previous = {name: os.environ.get(name) for name in [*settings, *restore]}
    os.environ.update(settings)
    gConfigurationData.loadAll()
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        gConfigurationData.loadAll()


def user_proxies(ca, folder: Path, roles: Iterable[tuple[str, str]] = ROLES) -> dict[tuple[str, str], str]:
    """``{(user, group): proxy file}`` for each role, written in ``folder``."""
    return {(user, group): ca.proxy(user, group, path=Path(folder) / f"{user}-{group}.pem") for user, group in roles}


@contextlib.contextmanager
def running_catalog(
    ca, folder: Path, facade: bool = False, dbURL: str | None = None, instances: int = 1, options: dict | None = None
) -> Iterator[tuple[object, Path, dict]]:
    """A FileCatalog service on a fresh SQLite file in ``folder`` (or on ``dbURL``), this process configured for it.

    Yields ``(service, cfgPath, proxies)``; ``facade=True`` adds the service's URL and the facade's
    catalog section to the cfg (what the commands read). With ``instances`` > 1, that many services
    share the database, all in the URL list, and ``service`` is the list of them. ``options`` go to
    ``/Systems/DataManagement`` (e.g. ``{"Services/FileCatalog/MaxLFNsPerCall": "10"}``). The
    services are stopped by their PIDs after.
    """
    from rpc_fixtures import ServiceLauncher, free_port, service_cfg

    ports = [free_port() for _ in range(instances)]
    cfgPath = Path(folder) / "dirac.cfg"
    listed = ports if facade or instances > 1 else []
    systems = systems_cfg(folder, catalogPorts=listed, facade=facade, dbURL=dbURL, options=options)
    cfgPath.write_text(service_cfg(ca, {}, extra=systems))
    launcher = ServiceLauncher()
    try:
        services = [launcher.start("DataManagement/FileCatalog", cfgPath, port=port) for port in ports]
        with client_environment(cfgPath):
            yield services[0] if instances == 1 else services, cfgPath, user_proxies(ca, folder)
    finally:
        launcher.stopAll()


def gateway_cfgs(ca, folder: Path, systems: str, server, bucket: str, **indirect: object) -> tuple[Path, Path]:
    """Write ``folder/server.cfg`` and ``folder/client.cfg`` for services and clients of ``systems``.

    The bucket is the SE ``S3-INDIRECT``, with keys in the server's cfg only (the gateway signs);
    the client's cfg also has ``S3-DIRECT``, the same bucket with keys. ``indirect`` options go to
    the client's ``S3-INDIRECT`` (e.g. its multipart sizes). Returns ``(serverCfg, clientCfg)``.
    """
    from rpc_fixtures import service_cfg
    from s3_fixtures import merge_cfg, s3_se_cfg

    serverCfg = Path(folder) / "server.cfg"
    serverCfg.write_text(service_cfg(ca, {}, extra=merge_cfg(systems, s3_se_cfg("S3-INDIRECT", server, bucket))))
    clientCfg = Path(folder) / "client.cfg"
    keyless = s3_se_cfg("S3-INDIRECT", server, bucket, with_keys=False, **indirect)
    clientCfg.write_text(service_cfg(ca, {}, extra=merge_cfg(systems, keyless, s3_se_cfg("S3-DIRECT", server, bucket))))
    return serverCfg, clientCfg


def run_processes(processes: list, queue, timeout: float) -> list:
    """Start ``processes`` and return one result per process from ``queue`` (each wait at most ``timeout`` s).

    Whatever happens, every process is joined (30 s) and, if still alive, killed by its PID.
    """
    for process in processes:
        process.start()
    try:
        return [queue.get(timeout=timeout) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)

"""A bootstrapped site in a temporary folder, administered with dirac-admin-sysadmin-cli.

One site per module (runsvdir, Configuration/Server, Framework/SystemAdministrator on 127.0.0.1):
FileCatalog and S3Gateway are installed through the CLI, the gateway is killed with SIGKILL and
runit restarts it, a non-administrator is refused, an unknown service changes nothing,
uninstall removes the gateway, and the site is stopped: every process is checked gone by PID.
The tests run in file order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from diraccfg import CFG

from DIRAC.ConfigurationSystem.Client.CSAPI import CSAPI
from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Tornado.Client.TornadoClient import clearFailed
from DIRAC.Core.Utilities.Subprocesses import freePort
from DIRAC.FrameworkSystem.Client import Runit
from DIRAC.FrameworkSystem.Client.InstanceSettings import InstanceSettings

pytestmark = pytest.mark.skipif(not Runit.checkTools()["OK"], reason="runit is not installed")

COMMAND_TIMEOUT = 120
GATEWAY = ("DataManagement", "S3Gateway")
CATALOG = ("DataManagement", "FileCatalog")


@dataclass
class Site:
    folder: Path
    settings: InstanceSettings
    siteCfg: Path
    clientCfg: Path
    admin: str  # proxy of alice in dirac_admin (ServiceAdministrator)
    user: str  # proxy of bob in dirac_user (no ServiceAdministrator)
    caDir: str
    bootstrapOutput: str

    def central(self) -> CFG:
        """The central configuration as the configuration server serves it (fetched over HTTPS)."""
        csAPI = CSAPI(url=self.serverURL, useCertificates=False, proxyLocation=self.admin)
        result = csAPI.getCurrentCFG()
        assert result["OK"], result
        return result["Value"]

    @property
    def serverURL(self) -> str:
        return CFG().loadFromFile(str(self.settings.localCfgPath)).getOption("DIRAC/Configuration/Servers")

    @property
    def adminPort(self) -> int:
        url = CFG().loadFromFile(self.settings.centralCfgPath).getOption("Systems/Framework/URLs/SystemAdministrator")
        return int(url.split(":")[2].split("/")[0])

    def env(self, proxy: str) -> dict:
        env = dict(os.environ)
        env.update(DIRACSYSCONFIG=str(self.clientCfg), X509_CERT_DIR=self.caDir, X509_USER_PROXY=proxy)
        return env

    def cli(self, commands: list[str], proxy: str | None = None) -> subprocess.CompletedProcess:
        """Commands on the CLI's standard input (not a terminal), as a script would."""
        command = [sys.executable, "-m", "DIRAC.FrameworkSystem.scripts.dirac_admin_sysadmin_cli"]
        command += ["-H", "localhost", "-p", str(self.adminPort)]
        return subprocess.run(
            command,
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            env=self.env(proxy or self.admin),
            timeout=COMMAND_TIMEOUT,
        )

    def setup(self, *extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "DIRAC.FrameworkSystem.scripts.dirac_setup_site", *extra]
        env = {key: value for key, value in os.environ.items() if not key.startswith(("X509_", "DIRACSYSCONFIG"))}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT)

    def treePids(self) -> list[int]:
        root = Runit.runsvdirPid(self.settings.pidFile, self.settings.startupDir)
        return ([root] + Runit.descendants([root])) if root else []


def _siteCfg(test_ca, folder: Path, base: int) -> str:
    from security_fixtures import registry_cfg

    registry = CFG().loadFromBuffer(registry_cfg(test_ca)).getAsCFG("Registry")
    alice = test_ca.users["alice"]
    site = f"""
LocalInstallation
{{
  TargetPath = {folder / "instance"}
  Host = localhost
  ListenAddress = 127.0.0.1
  PortBase = {base}
  CALocation = {test_ca.caDir}
  CertFile = {test_ca.hostCert}
  KeyFile = {test_ca.hostKey}
  SiteName = DIRAC.Test.local
  VirtualOrganization = testvo
  AdminUserName = alice
  AdminUserDN = {alice.dn}
  AdminGroupName = dirac_admin
}}
"""
    cfg = CFG().loadFromBuffer(site)
    cfg.createNewSection("Registry", "", registry)
    return str(cfg)


@pytest.fixture(scope="module")
def site(test_ca, tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    siteCfg = folder / "site.cfg"
    siteCfg.write_text(_siteCfg(test_ca, folder, freePort(count=8)))
    settings = InstanceSettings(str(folder / "instance"), host="localhost", listenAddress="127.0.0.1")
    clientCfg = Path(settings.clientCfgPath)  # written by the bootstrap for users' clients
    made = Site(
        folder=folder,
        settings=settings,
        siteCfg=siteCfg,
        clientCfg=clientCfg,
        admin=test_ca.proxy("alice", "dirac_admin", 3600, folder / "admin.proxy"),
        user=test_ca.proxy("bob", "dirac_user", 3600, folder / "user.proxy"),
        caDir=test_ca.caDir,
        bootstrapOutput="",
    )
    started = made.setup(str(siteCfg))
    made.bootstrapOutput = started.stdout + started.stderr
    seen = made.treePids()
    try:
        assert started.returncode == 0, made.bootstrapOutput
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("X509_CERT_DIR", test_ca.caDir)  # this process's own RPC calls trust the test CA
            yield made
    finally:
        seen = list(dict.fromkeys(seen + made.treePids()))
        made.setup("--stop", str(settings.instancePath))
        Runit.killPids(Runit.waitGone(seen, 10))  # whatever --stop left, by PID


@pytest.fixture(scope="module")
def installed(site):
    """FileCatalog and S3Gateway installed through the CLI (once for the module)."""
    done = site.cli(
        [
            f"install service {CATALOG[0]} {CATALOG[1]}",
            f"install service {GATEWAY[0]} {GATEWAY[1]}",
            "status",
            "show installed",
            f"show log {GATEWAY[0]} {GATEWAY[1]} 20",
        ]
    )
    return done


def _urlOf(cfg: CFG, system: str, service: str) -> str:
    return cfg.getOption(f"Systems/{system}/URLs/{service}", "")


def _ping(url: str, proxy: str) -> dict:
    return RPCClient(url, useCertificates=False, proxyLocation=proxy, timeout=10).ping()


def test_bootstrap_lays_out_and_starts_the_instance(site):
    settings = site.settings
    for folder in settings.folders():
        assert os.path.isdir(folder), folder
    local = CFG().loadFromFile(settings.localCfgPath)
    assert local.getOption("LocalSite/InstancePath") == settings.instancePath
    assert oct(os.stat(settings.localCfgPath).st_mode & 0o777) == "0o600"
    client = CFG().loadFromFile(settings.clientCfgPath)
    assert client.getOption("DIRAC/Configuration/Servers") == site.serverURL
    assert client.getAsDict("DIRAC/Security") == {"CALocation": site.caDir}  # no host key, no secrets
    central = site.central()
    assert central.getOption("Systems/Configuration/URLs/Server") == site.serverURL
    assert "ServiceAdministrator" in central.getOption("Registry/Hosts/localhost/Properties", [])
    assert "alice" in central.getOption("Registry/Groups/dirac_admin/Users", [])
    assert central.getOption("Registry/Groups/dirac_user/Users", []) == ["alice", "bob"]  # from the site cfg
    pid = Runit.runsvdirPid(settings.pidFile, settings.startupDir)
    assert pid and Runit.isAlive(pid)
    for system, service in (("Configuration", "Server"), ("Framework", "SystemAdministrator")):
        assert os.path.islink(settings.startupLink(system, service))
        status = Runit.serviceStatus(settings.componentDir(system, service))["Value"]
        assert status["RunitStatus"] == "Run", status
    answer = _ping(_urlOf(central, "Framework", "SystemAdministrator"), site.user)
    assert answer["OK"], answer


def test_bootstrap_again_changes_nothing(site):
    settings = site.settings
    before = {
        "runsvdir": Runit.runsvdirPid(settings.pidFile, settings.startupDir),
        "server": Runit.serviceStatus(settings.componentDir("Configuration", "Server"))["Value"]["PID"],
        "version": site.central().getOption("DIRAC/Configuration/Version"),
    }
    again = site.setup(str(site.siteCfg))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Configuration/Server: unchanged" in again.stdout
    after = {
        "runsvdir": Runit.runsvdirPid(settings.pidFile, settings.startupDir),
        "server": Runit.serviceStatus(settings.componentDir("Configuration", "Server"))["Value"]["PID"],
        "version": site.central().getOption("DIRAC/Configuration/Version"),
    }
    assert after == before


def test_install_through_the_cli(site, installed):
    assert installed.returncode == 0, installed.stdout + installed.stderr
    out = installed.stdout
    for system, service in (CATALOG, GATEWAY):
        assert f"{system}/{service} installed at https://localhost:" in out
        assert f"service  {system}/{service}" in out  # show installed
    assert "Service ready DataManagement/S3Gateway" in out  # show log
    central = site.central()
    for system, service in (CATALOG, GATEWAY):
        url = _urlOf(central, system, service)
        assert url.startswith("https://localhost:") and url.endswith(f"/{system}/{service}")
        port = central.getOption(f"Systems/{system}/Services/{service}/Port")
        assert f":{port}/" in url
        assert central.getOption(f"Systems/{system}/Services/{service}/Authorization/Default") == "authenticated"
        answer = _ping(url, site.user)
        assert answer["OK"], answer
        assert answer["Value"]["name"] == f"{system}/{service}"
    assert os.path.islink(site.settings.startupLink(*GATEWAY))


def test_killed_gateway_is_restarted_and_clients_recover(site, installed):
    url = _urlOf(site.central(), *GATEWAY)
    client = RPCClient(url, useCertificates=False, proxyLocation=site.user, timeout=10)
    first = client.ping()
    assert first["OK"], first
    oldPid = first["Value"]["pid"]
    assert Runit.serviceStatus(site.settings.componentDir(*GATEWAY))["Value"]["PID"] == oldPid
    os.kill(oldPid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    answer = {"OK": False, "Message": "not tried"}
    while time.monotonic() < deadline:
        clearFailed()
        answer = client.ping()  # the same client object, its kept-alive connection now dead
        if answer["OK"] and answer["Value"]["pid"] != oldPid:
            break
        time.sleep(0.2)
    assert answer["OK"], answer
    assert answer["Value"]["pid"] != oldPid
    assert Runit.processState(oldPid) != "alive"
    status = Runit.serviceStatus(site.settings.componentDir(*GATEWAY))["Value"]
    assert (status["RunitStatus"], status["PID"]) == ("Run", answer["Value"]["pid"])


def test_caller_without_service_administrator_is_refused(site, installed):
    version = site.central().getOption("DIRAC/Configuration/Version")
    refused = site.cli(["status", f"install service {CATALOG[0]} Second -m FileCatalog"], proxy=site.user)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.count("ERROR:") == 2
    assert "lacks the required property" in refused.stderr and "ServiceAdministrator" in refused.stderr
    assert site.central().getOption("DIRAC/Configuration/Version") == version
    assert not os.path.exists(site.settings.componentDir(CATALOG[0], "Second"))


def test_installing_an_unknown_service_changes_nothing(site, installed):
    version = site.central().getOption("DIRAC/Configuration/Version")
    links = sorted(os.listdir(site.settings.startupDir))
    result = site.cli(["install service DataManagement NoSuchService", "install service NoSuchSystem Thing"])
    assert result.returncode == 1
    assert "unknown service DataManagement/NoSuchService" in result.stderr
    assert "unknown system NoSuchSystem" in result.stderr
    assert site.central().getOption("DIRAC/Configuration/Version") == version
    assert sorted(os.listdir(site.settings.startupDir)) == links
    assert not os.path.exists(site.settings.componentDir("DataManagement", "NoSuchService"))


def test_uninstall_removes_the_gateway(site, installed):
    url = _urlOf(site.central(), *GATEWAY)
    pid = Runit.serviceStatus(site.settings.componentDir(*GATEWAY))["Value"]["PID"]
    assert pid
    done = site.cli([f"uninstall service {GATEWAY[0]} {GATEWAY[1]}", "status"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DataManagement/S3Gateway uninstalled" in done.stdout
    central = site.central()
    assert not central.isOption(f"Systems/{GATEWAY[0]}/URLs/{GATEWAY[1]}")
    assert not central.isSection(f"Systems/{GATEWAY[0]}/Services/{GATEWAY[1]}")
    assert _urlOf(central, *CATALOG)  # the catalog stays
    assert not os.path.lexists(site.settings.startupLink(*GATEWAY))
    assert not os.path.exists(site.settings.componentDir(*GATEWAY))
    assert Runit.processState(pid) != "alive"
    assert "S3Gateway" not in done.stdout.split("uninstalled", 1)[1]  # not in the status table
    assert os.path.isfile(os.path.join(site.settings.logsDir, "DataManagement_S3Gateway.log"))
    clearFailed()
    assert not _ping(url, site.user)["OK"]


def test_stop_ends_every_process_and_setup_brings_the_site_back(site):
    pids = site.treePids()
    assert len(pids) >= 7  # runsvdir, 3 x (runsv, service, svlogd) at least
    stopped = site.setup("--stop", site.settings.instancePath)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [pid for pid in pids if Runit.isAlive(pid)] == []
    assert not os.path.exists(site.settings.pidFile)

    again = site.setup(str(site.siteCfg))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "DataManagement/FileCatalog: started" in again.stdout  # installed earlier, back with the site
    answer = _ping(_urlOf(site.central(), *CATALOG), site.user)
    assert answer["OK"], answer
    assert not set(site.treePids()) & set(pids)

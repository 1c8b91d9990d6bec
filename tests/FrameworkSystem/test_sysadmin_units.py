"""The installer's pieces without running services: names, templates, options, ports, cfg edits, sv parsing, CLI."""

from __future__ import annotations

import io
import os
import socket

import pytest
from diraccfg import CFG

from DIRAC.ConfigurationSystem.Service.CentralStore import VERSION_OPTION
from DIRAC.FrameworkSystem.Client import Runit
from DIRAC.FrameworkSystem.Client.ComponentInstaller import ComponentInstaller
from DIRAC.FrameworkSystem.Client.ComponentTemplates import checkService, checkType, optionsToCFG
from DIRAC.FrameworkSystem.Client.InstanceSettings import InstanceSettings
from DIRAC.FrameworkSystem.Client.LocalCSAPI import LocalCSAPI
from DIRAC.FrameworkSystem.Client.SiteSetup import loadSiteCfg
from DIRAC.FrameworkSystem.Client.SystemAdministratorClientCLI import SystemAdministratorClientCLI

# templates and options -------------------------------------------------------------------------


def test_known_services_have_template_and_handler():
    for system, service in (("DataManagement", "S3Gateway"), ("DataManagement", "FileCatalog"),
                            ("Configuration", "Server"), ("Framework", "SystemAdministrator")):  # fmt: skip
        result = checkService(system, service)
        assert result["OK"], result
        assert result["Value"].getOption("Port", "")


def test_template_authorization_of_system_administrator():
    section = checkService("Framework", "SystemAdministrator")["Value"]
    assert section.getOption("Authorization/Default") == "ServiceAdministrator"


@pytest.mark.parametrize(
    ("system", "service", "words"),
    [
        ("DataManagement", "NoSuchService", ["unknown service DataManagement/NoSuchService", "S3Gateway"]),
        ("NoSuchSystem", "Thing", ["unknown system NoSuchSystem"]),
        ("Data/../x", "Thing", ["invalid system name"]),
        ("DataManagement", "S3Gateway;rm", ["invalid service name"]),
    ],
)
def test_unknown_services_are_refused_clearly(system, service, words):
    result = checkService(system, service)
    assert not result["OK"]
    for word in words:
        assert word in result["Message"]


def test_module_option_uses_the_other_services_handler():
    assert checkService("DataManagement", "SecondCatalog", "FileCatalog")["OK"]
    assert not checkService("DataManagement", "SecondCatalog")["OK"]


def test_only_services_are_supported():
    assert checkType("Service")["OK"]
    assert "not supported" in checkType("agent")["Message"]


def test_options_become_a_cfg_with_sub_sections():
    result = optionsToCFG({"Port": 9200, "Authorization/Default": "authenticated", "MaxThreads": "4"})
    assert result["OK"], result
    cfg = result["Value"]
    assert cfg.getOption("Port") == "9200"
    assert cfg.getOption("Authorization/Default") == "authenticated"


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"Aws_secret_access_key": "x"}, "looks like a secret"),
        ({"Aws_access_key_id": "x"}, "looks like a secret"),
        ({"DBPassword": "x"}, "looks like a secret"),
        ({"Bad Name": "x"}, "invalid option name"),
        ({"../Port": "x"}, "invalid option name"),
        ({"Port": "1\n}\nRegistry {"}, "newlines or braces"),
    ],
)
def test_bad_or_secret_options_are_refused(options, word):
    result = optionsToCFG(options)
    assert not result["OK"]
    assert word in result["Message"]


# sv status -------------------------------------------------------------------------------------


def test_parse_sv_status_lines():
    run = Runit.parseSvStatus("run: /i/runit/A/B: (pid 123) 45s; run: log: (pid 120) 50s\n")
    assert (run["RunitStatus"], run["PID"], run["Timeup"], run["LogStatus"]) == ("Run", 123, 45, "Run")
    down = Runit.parseSvStatus("down: /i/runit/A/B: 3s, normally up; run: log: (pid 120) 50s")
    assert (down["RunitStatus"], down["PID"], down["WantUp"]) == ("Down", 0, False)
    crashed = Runit.parseSvStatus("down: /i/runit/A/B: 0s, normally up, want up")
    assert crashed["WantUp"] is True
    held = Runit.parseSvStatus("down: /i/runit/A/B: 1s, normally down; run: log: (pid 120) 5s")
    assert held["NormallyDown"] is True
    unknown = Runit.parseSvStatus("warning: /i/runit/A/B: unable to open supervise/ok: file does not exist")
    assert unknown["RunitStatus"] == "Unknown"


def test_process_states():
    assert Runit.processState(os.getpid()) == "alive"
    assert Runit.processState(0) == "gone"
    assert Runit.processState(2**22 + 12345) == "gone"


# configuration edits on a local central file -------------------------------------------------


@pytest.fixture
def instance(tmp_path) -> ComponentInstaller:
    settings = InstanceSettings(str(tmp_path / "inst"), host="localhost", listenAddress="127.0.0.1")
    os.makedirs(settings.etcDir)
    central = CFG()
    central.createNewSection("DIRAC")
    central.createNewSection("DIRAC/Configuration")
    central.setOption(VERSION_OPTION, "2026-01-01 00:00:00.000000")
    with open(settings.centralCfgPath, "w") as handle:
        handle.write(str(central))
    return ComponentInstaller(settings, csAPIFactory=lambda: LocalCSAPI(settings.centralCfgPath))


def _central(installer: ComponentInstaller) -> CFG:
    return CFG().loadFromFile(installer.getSettings()["Value"].centralCfgPath)


def _busyPort() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


def test_add_and_remove_a_service_in_the_central_configuration(instance):
    result = instance.addComponentToCS("DataManagement", "S3Gateway", {"Port": "9321", "MaxExpiration": "3600"})
    assert result["OK"], result
    assert result["Value"]["URL"] == "https://localhost:9321/DataManagement/S3Gateway"
    cfg = _central(instance)
    section = "Systems/DataManagement/Services/S3Gateway"
    assert cfg.getOption(f"{section}/Port") == "9321"
    assert cfg.getOption(f"{section}/MaxExpiration") == "3600"  # given option wins over the template
    assert cfg.getOption(f"{section}/Authorization/Default") == "authenticated"  # template default
    assert cfg.getOption("Systems/DataManagement/URLs/S3Gateway") == result["Value"]["URL"]

    again = instance.addComponentToCS("DataManagement", "S3Gateway", {}, installedHere=True)
    assert again["OK"] and again["Value"]["Changed"] is False and again["Value"]["Port"] == 9321

    removed = instance.removeComponentFromCS("DataManagement", "S3Gateway")
    assert removed["OK"], removed
    cfg = _central(instance)
    assert not cfg.isSection(section)
    assert not cfg.isOption("Systems/DataManagement/URLs/S3Gateway")


def test_other_hosts_keep_their_urls(instance):
    other = "https://gw2.example.org:9198/DataManagement/S3Gateway"
    cs = LocalCSAPI(instance.getSettings()["Value"].centralCfgPath)
    assert cs.setOption("/Systems/DataManagement/URLs/S3Gateway", other)["OK"]
    assert cs.setOption("/Systems/DataManagement/Services/S3Gateway/Port", "9198")["OK"]
    assert cs.commit()["OK"]
    sock, port = _busyPort()
    with sock:
        pass
    assert instance.addComponentToCS("DataManagement", "S3Gateway", {"Port": str(port)})["OK"]
    urls = _central(instance).getOption("Systems/DataManagement/URLs/S3Gateway", [])
    assert other in urls and f"https://localhost:{port}/DataManagement/S3Gateway" in urls
    assert instance.removeComponentFromCS("DataManagement", "S3Gateway")["OK"]
    cfg = _central(instance)
    assert cfg.getOption("Systems/DataManagement/URLs/S3Gateway") == other
    assert cfg.isSection("Systems/DataManagement/Services/S3Gateway")  # still used by gw2


def test_busy_or_taken_ports_are_refused(instance):
    sock, port = _busyPort()
    with sock:
        busy = instance.addComponentToCS("DataManagement", "FileCatalog", {"Port": str(port)})
    assert not busy["OK"] and f"port {port} is busy" in busy["Message"]
    assert not _central(instance).isSection("Systems/DataManagement")  # nothing written

    # the socket is closed now: the port is free
    assert instance.addComponentToCS("DataManagement", "FileCatalog", {"Port": str(port)})["OK"]
    taken = instance.addComponentToCS("DataManagement", "S3Gateway", {"Port": str(port)})
    assert not taken["OK"] and "already used by DataManagement/FileCatalog" in taken["Message"]


def test_ports_from_the_port_base(instance):
    settings = instance.getSettings()["Value"]
    sock, busy = _busyPort()
    with sock:
        settings.portBase = busy
        first = instance.addComponentToCS("DataManagement", "FileCatalog", {})
        second = instance.addComponentToCS("DataManagement", "S3Gateway", {})
    assert first["OK"] and second["OK"], (first, second)
    assert busy < first["Value"]["Port"] < second["Value"]["Port"]


def test_run_script_execs_dirac_service_with_the_instance_configuration(instance, tmp_path):
    settings = instance.getSettings()["Value"]
    text = instance._runScript(settings, "DataManagement", "S3Gateway")
    assert f"DIRACSYSCONFIG={settings.localCfgPath}" in text
    assert "DataManagement_S3Gateway.cfg" in text
    assert "unset X509_USER_PROXY" in text
    assert text.rstrip().endswith("DataManagement/S3Gateway --host 127.0.0.1")
    assert "exec " in text.splitlines()[-1]


# site cfg ---------------------------------------------------------------------------------------


def test_site_cfg_sections(tmp_path):
    path = tmp_path / "site.cfg"
    path.write_text(
        """
LocalInstallation
{
  TargetPath = /opt/dirac
  Host = server.example.org
  PortBase = 9135
  AdminUserDN = /O=Grid/CN=Admin
  Services = DataManagement/FileCatalog, DataManagement/S3Gateway
}
LocalConfiguration
{
  Resources
  {
    StorageElements
    {
      S3-SE
      {
        S3
        {
          Aws_access_key_id = AKIA
        }
      }
    }
  }
}
Registry
{
  DefaultGroup = dirac_user
}
"""
    )
    result = loadSiteCfg(str(path))
    assert result["OK"], result
    options = result["Value"]
    assert (options.instancePath, options.host, options.portBase) == ("/opt/dirac", "server.example.org", 9135)
    assert options.services == ["DataManagement/FileCatalog", "DataManagement/S3Gateway"]
    assert options.local.getOption("Resources/StorageElements/S3-SE/S3/Aws_access_key_id") == "AKIA"
    assert options.central.getOption("Registry/DefaultGroup") == "dirac_user"
    assert not options.central.isSection("LocalConfiguration")

    path.write_text("LocalInstallation\n{\n  Colour = blue\n}\n")
    assert "unknown option LocalInstallation/Colour" in loadSiteCfg(str(path))["Message"]


# CLI parsing (a recording stand-in for the client: no network involved) ------------------------


class _Recorder:
    host = "server.example.org"

    def __init__(self):
        self.calls = []

    def installComponent(self, *args):
        self.calls.append(("install", *args))
        if args[2] == "Broken":
            return {"OK": False, "Message": "unknown service DataManagement/Broken"}
        return {"OK": True, "Value": {"Action": "installed", "URL": "https://x:1/y", "Status": {"PID": 7}}}

    def getComponentStatus(self, *args):
        self.calls.append(("status", *args))
        return {"OK": True, "Value": {}}

    def restartComponent(self, *args):
        self.calls.append(("restart", *args))
        return {"OK": True, "Value": {}}


def test_cli_parses_commands_and_counts_failures():
    client = _Recorder()
    out, err = io.StringIO(), io.StringIO()
    cli = SystemAdministratorClientCLI(client, stdout=out, stderr=err)
    failures = cli.runScript(
        [
            "# a comment",
            "install service DataManagement S3Gateway -p Port=9198 -p Authorization/Default=authenticated",
            "install service DataManagement Second -m FileCatalog",
            "install service DataManagement Broken",
            "install service DataManagement",
            "install service DataManagement X -p NoEquals",
            "restart *",
            "status DataManagement",
            "bogus",
        ]
    )
    assert client.calls[0] == ("install", "service", "DataManagement", "S3Gateway",
                               {"Port": "9198", "Authorization/Default": "authenticated"})  # fmt: skip
    assert client.calls[1][-1] == {"Module": "FileCatalog"}
    assert ("restart", "*", "*") in client.calls and ("status", "DataManagement", "*") in client.calls
    assert failures == 4
    errors = err.getvalue()
    assert "unknown service DataManagement/Broken" in errors
    assert "usage: install service" in errors
    assert "expected Option=Value" in errors
    assert "unknown command: bogus" in errors
    assert "DataManagement/S3Gateway installed at https://x:1/y (pid 7)" in out.getvalue()


def test_one_installer_action_at_a_time(instance):
    settings = instance.getSettings()["Value"]
    other = ComponentInstaller(settings)  # another process would hold the same lock file
    with instance._exclusive(settings) as held:
        assert held["OK"]
        with other._exclusive(settings, timeout=0.3) as refused:
            assert not refused["OK"] and "another installation is running" in refused["Message"]
    with other._exclusive(settings, timeout=0.3) as later:
        assert later["OK"]

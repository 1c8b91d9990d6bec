"""The configuration server: clients load the central configuration from it, admins commit to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.ConfigurationData import centralFileLoader, gConfigurationData
from DIRAC.ConfigurationSystem.Client.CSAPI import CSAPI
from DIRAC.ConfigurationSystem.Client.CSServerLoader import installCentralLoader
from DIRAC.ConfigurationSystem.Service.CentralStore import compress, decompress
from DIRAC.Core.DISET.RPCClient import RPCClient
from rpc_fixtures import free_port, service_cfg

SE = "/Resources/StorageElements/S3-SE"


def _central(test_ca) -> str:
    from diraccfg import CFG

    from security_fixtures import registry_cfg

    return str(
        CFG()
        .loadFromBuffer(registry_cfg(test_ca))
        .mergeWith(
            CFG().loadFromBuffer(
                """
Resources
{
  StorageElements
  {
    S3-SE
    {
      BackendType = S3
      S3
      {
        Protocol = s3
        Host = s3.central.example
        Port = 9000
        Path = central-bucket
        SecureConnection = True
      }
    }
  }
}
DIRAC
{
  Configuration
  {
    Version = 2026-01-01 00:00:00.000000
  }
}
"""
            )
        )
    )


@pytest.fixture
def cs_server(test_ca, tmp_path, rpc_launcher):
    central = tmp_path / "central.cfg"
    central.write_text(_central(test_ca))
    local = tmp_path / "server.cfg"
    local.write_text(
        service_cfg(
            test_ca,
            {"Configuration/Server": {}},
            extra=f"DIRAC\n{{\n  Configuration\n  {{\n    CentralFile = {central}\n  }}\n}}\n",
        )
    )
    server = rpc_launcher.start("Configuration/Server", local)
    server.central = central
    return server


@pytest.fixture
def proxies(test_ca, tmp_path) -> dict:
    return {
        "user": test_ca.proxy("alice", "dirac_user", 3600, tmp_path / "user"),
        "admin": test_ca.proxy("alice", "dirac_admin", 3600, tmp_path / "admin"),
    }


@pytest.fixture
def cs_client(cs_server, test_ca, tmp_path, monkeypatch, proxies):
    """This process as a client of the configuration server; its local cfg overrides the SE's Host."""
    dead = f"https://localhost:{free_port()}/Configuration/Server"  # fail-over from a stopped server
    local = tmp_path / "client.cfg"
    local.write_text(
        f"""
DIRAC
{{
  Security
  {{
    CALocation = {test_ca.caDir}
  }}
  Configuration
  {{
    Servers = {dead}, {cs_server.url()}
    RefreshTime = 1
  }}
}}
Resources
{{
  StorageElements
  {{
    S3-SE
    {{
      S3
      {{
        Host = s3.local-override.example
      }}
    }}
  }}
}}
"""
    )
    monkeypatch.setenv("DIRACSYSCONFIG", str(local))
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    monkeypatch.setenv("X509_USER_PROXY", proxies["user"])
    loader = installCentralLoader()
    loaded = gConfigurationData.loadAll()
    yield loader, loaded
    loader.stop()
    gConfigurationData.setCentralLoader(centralFileLoader)
    monkeypatch.undo()
    gConfigurationData.loadAll()


def _wait(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_client_reads_SE_definitions_from_the_server_with_local_override(cs_server, cs_client, proxies):
    loader, loaded = cs_client
    assert loaded["OK"], loaded
    assert gConfig.getValue(f"{SE}/S3/Path", "") == "central-bucket"
    assert gConfig.getValue(f"{SE}/S3/Port", 0) == 9000
    assert gConfig.getValue(f"{SE}/S3/SecureConnection", False) is True
    assert gConfig.getValue(f"{SE}/S3/Host", "") == "s3.local-override.example"  # local wins
    assert gConfig.getSections("/Registry/Groups")["Value"] == ["dirac_user", "dirac_admin"]
    server = RPCClient(cs_server.url(), proxyLocation=proxies["user"])
    assert loader.version == server.getVersion()["Value"] == "2026-01-01 00:00:00.000000"


def test_commit_is_seen_by_clients_and_a_stale_commit_is_refused(cs_server, cs_client, proxies):
    admin = CSAPI(url=cs_server.url(), proxyLocation=proxies["admin"])
    late = CSAPI(url=cs_server.url(), proxyLocation=proxies["admin"])
    assert late.downloadCSData()["OK"]  # based on the version before admin's commit

    assert admin.setOption(f"{SE}/S3/Port", 9443)["OK"]
    assert admin.setOption(f"{SE}/S3/Host", "s3.new-central.example")["OK"]
    assert admin.createSection("/Systems/DataManagement/Services/S3Gateway")["OK"]
    assert admin.setOption("/Systems/DataManagement/Services/S3Gateway/Port", 9160)["OK"]
    assert admin.setOption("/Operations/Defaults/DataManagement/Protocols", ["s3", "file"])["OK"]
    assert admin.delOption(f"{SE}/S3/SecureConnection")["OK"]
    assert not admin.delSection("/No/Such/Section")["OK"]
    committed = admin.commit()
    assert committed["OK"], committed
    newVersion = committed["Value"]
    assert newVersion > "2026-01-01 00:00:00.000000"

    assert late.setOption("/Operations/Defaults/Flag", "yes")["OK"]
    stale = late.commit()
    assert not stale["OK"]
    assert "stale commit refused" in stale["Message"] and newVersion in stale["Message"]

    text = Path(cs_server.central).read_text()
    assert f"Version = {newVersion}" in text and "Port = 9443" in text and "Flag" not in text
    assert "CommittedBy = alice@dirac_admin" in text
    assert len(list(Path(f"{cs_server.central}.history").iterdir())) == 1

    # The client's background refresh (RefreshTime = 1) brings the new version; local still wins.
    assert _wait(lambda: gConfig.getValue(f"{SE}/S3/Port", 0) == 9443), "the client did not refresh"
    assert gConfig.getValue("/Systems/DataManagement/Services/S3Gateway/Port", 0) == 9160
    assert gConfig.getValue("/Operations/Defaults/DataManagement/Protocols", []) == ["s3", "file"]
    assert gConfig.getValue(f"{SE}/S3/Host", "") == "s3.local-override.example"
    assert cs_client[0].version == newVersion

    # A fresh download then commits fine.
    assert late.downloadCSData()["Value"] == newVersion
    assert late.setOption("/Operations/Defaults/Flag", "yes")["OK"]
    assert late.commit()["OK"]


def test_commit_needs_CSAdministrator(cs_server, cs_client, proxies):
    user = CSAPI(url=cs_server.url(), proxyLocation=proxies["user"])
    assert user.setOption("/Operations/Defaults/Flag", "yes")["OK"]  # editing the local copy is fine
    refused = user.commit()
    assert not refused["OK"] and "lacks the required property, one of CSAdministrator" in refused["Message"]
    assert "Flag" not in Path(cs_server.central).read_text()


def test_bad_commits_and_versioned_reads(cs_server, proxies, security_cfg, test_ca, monkeypatch):
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    server = RPCClient(cs_server.url(), proxyLocation=proxies["admin"])
    version = server.getVersion()["Value"]
    bad = server.commitNewData("Section\n{\n  unterminated", version)
    assert not bad["OK"] and "invalid configuration text" in bad["Message"]
    unversioned = server.commitNewData("A\n{\n  B = 1\n}\n")
    assert not unversioned["OK"] and "which version it is based on" in unversioned["Message"]
    assert not server.commitNewData(12, version)["OK"]

    same = server.getCompressedDataIfNewer(version)["Value"]
    assert same == {"newestVersion": version}
    newer = server.getCompressedDataIfNewer("")["Value"]
    assert "central-bucket" in decompress(newer["data"])["Value"]
    assert decompress(server.getCompressedData()["Value"])["Value"] == decompress(newer["data"])["Value"]
    assert decompress(compress("x = 1"))["Value"] == "x = 1"
    assert not decompress("not base64 !")["OK"]


def test_no_server_reachable_is_a_clear_load_error(test_ca, tmp_path, monkeypatch, proxies):
    local = tmp_path / "client.cfg"
    dead = f"https://localhost:{free_port()}/Configuration/Server"
    local.write_text(f"DIRAC\n{{\n  Configuration\n  {{\n    Servers = {dead}\n  }}\n}}\n")
    monkeypatch.setenv("DIRACSYSCONFIG", str(local))
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    monkeypatch.setenv("X509_USER_PROXY", proxies["user"])
    loader = installCentralLoader()
    try:
        result = gConfigurationData.loadAll()
        assert not result["OK"]
        assert f"cannot load the central configuration from {dead}" in result["Message"]
        assert "Connection refused" in result["Message"]
    finally:
        loader.stop()
        gConfigurationData.setCentralLoader(centralFileLoader)
        monkeypatch.undo()
        gConfigurationData.loadAll()


def test_client_keeps_its_cached_copy_when_the_servers_go_away(cs_server, cs_client):
    loader, _ = cs_client
    version = loader.version
    assert cs_server.stop() == 0
    assert loader.refreshNow()["OK"]
    assert gConfigurationData.refreshCentral()["OK"]
    assert loader.version == version
    assert gConfig.getValue(f"{SE}/S3/Path", "") == "central-bucket"


def test_a_host_loads_the_configuration_with_its_certificate(cs_server, test_ca, tmp_path, monkeypatch):
    local = tmp_path / "host.cfg"
    local.write_text(
        f"""
DIRAC
{{
  Security
  {{
    CALocation = {test_ca.caDir}
    CertFile = {test_ca.hostCert}
    KeyFile = {test_ca.hostKey}
    UseServerCertificate = yes
  }}
  Configuration
  {{
    Servers = {cs_server.url()}
  }}
}}
"""
    )
    monkeypatch.setenv("DIRACSYSCONFIG", str(local))
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "no-proxy-here"))
    loader = installCentralLoader()
    try:
        assert gConfigurationData.loadAll()["OK"]
        assert gConfig.getValue(f"{SE}/S3/Host", "") == "s3.central.example"
    finally:
        loader.stop()
        gConfigurationData.setCentralLoader(centralFileLoader)
        monkeypatch.undo()
        gConfigurationData.loadAll()


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """This test's own cache folder (XDG_CACHE_HOME), set before the client loads anything."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cacheFiles(folder) -> list[Path]:
    return sorted(Path(folder, "dirac").glob("configuration-*.json"))


def test_the_last_configuration_is_kept_on_disk_for_this_user_only(own_cache, cs_server, cs_client):
    loader, loaded = cs_client
    assert loaded["OK"], loaded
    files = _cacheFiles(own_cache)
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600 and files[0].parent.stat().st_mode & 0o777 == 0o700
    assert "central-bucket" in files[0].read_text()


def _commandReading(option: str, cfg: Path, test_ca, proxy: str) -> subprocess.CompletedProcess:
    """A new client process that prints one option of the merged configuration."""
    code = "import DIRAC\nfrom DIRAC.ConfigurationSystem.Client.Config import gConfig\n"
    code += f"print(DIRAC.initialize().get('Message', ''))\nprint(gConfig.getValue({option!r}, 'MISSING'))"
    env = {**os.environ, "DIRACSYSCONFIG": str(cfg), "X509_CERT_DIR": test_ca.caDir, "X509_USER_PROXY": proxy}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_a_new_command_starts_from_the_disk_copy_when_no_server_answers(
    own_cache, cs_server, cs_client, test_ca, proxies
):
    cfg = Path(os.environ["DIRACSYSCONFIG"])
    assert cs_server.stop() == 0
    run = _commandReading(f"{SE}/S3/Path", cfg, test_ca, proxies["user"])
    assert run.stdout.splitlines()[-1] == "central-bucket", run.stderr
    assert "using the central configuration kept on disk" in run.stdout + run.stderr


def test_a_cache_file_others_may_write_is_ignored(own_cache, cs_server, cs_client, test_ca, proxies):
    cfg = Path(os.environ["DIRACSYSCONFIG"])
    assert cs_server.stop() == 0
    (cached,) = _cacheFiles(own_cache)
    cached.chmod(0o622)
    run = _commandReading(f"{SE}/S3/Path", cfg, test_ca, proxies["user"])
    assert run.stdout.splitlines()[-1] == "MISSING"
    assert "another user owns it or may write it" in run.stdout + run.stderr


def test_a_service_restarted_while_the_server_is_down_starts_from_the_disk_copy(
    cs_server, test_ca, tmp_path, rpc_launcher, proxies, monkeypatch
):
    local = tmp_path / "gateway-host.cfg"
    local.write_text(
        service_cfg(
            test_ca,
            {"Framework/RPCTest": {"HandlerPath": "rpc_test_handlers"}},
            extra=f"DIRAC\n{{\n  Configuration\n  {{\n    Servers = {cs_server.url()}\n  }}\n}}\n",
        )
    )
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    here = [str(Path(__file__).resolve().parent)]
    first = rpc_launcher.start("Framework/RPCTest", local, pythonPath=here)
    assert RPCClient(first.url(), proxyLocation=proxies["user"], timeout=10).ping()["OK"]
    first.stop()
    assert cs_server.stop() == 0
    again = rpc_launcher.start("Framework/RPCTest", local, pythonPath=here)
    assert "using the central configuration kept on disk" in again.log()
    assert RPCClient(again.url(), proxyLocation=proxies["user"], timeout=10).ping()["OK"], again.log()
    again.stop()

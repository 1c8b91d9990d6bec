"""Real DIRAC 9.1.22 clients (their own virtualenv, subprocesses) call our services over HTTPS.

Marked ``dirac9``; see ``conftest.py``. DIRAC 9's side is a user script with the ``Script``
header using DIRAC's own ``FileCatalogClient`` and ``TornadoClient`` and a real proxy.
(A DIRAC 9 *server* cannot run here: its ``TornadoServer`` needs DIRAC's own fork of tornado 5.1
(``SSLIOStream.configure``, for ``tornado-m2crypto``), which is not on PyPI; our client's DIRAC 9
dialect is checked against golden bodies and our server in ``tests/Core/Tornado/test_dirac9_wire.py``.)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import test_gateway_trust

from catalog_fixtures import running_catalog

pytestmark = pytest.mark.dirac9
site = test_gateway_trust.site  # a catalog and an S3 gateway over rclone and moto (tests/security)
HERE = Path(__file__).resolve().parent
HOME = "/testvo/user/a/alice"


def dirac9Environment(test_ca, cfgPath: Path, proxy: str, folder: Path) -> dict:
    """DIRAC 9's client environment: our cfg, the user's proxy, the test CA (folder and bundle)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        DIRACSYSCONFIG=str(cfgPath),
        X509_USER_PROXY=proxy,
        X509_CERT_DIR=str(test_ca.caDir),
        REQUESTS_CA_BUNDLE=test_ca.caCert,  # DIRAC's requests session verifies with it
        HOME=str(folder),
    )
    return env


def test_dirac9_client_uses_our_file_catalog(dirac9_python, test_ca, tmp_path):
    with running_catalog(test_ca, tmp_path, facade=True) as (service, cfgPath, proxies):
        env = dirac9Environment(test_ca, cfgPath, str(proxies[("alice", "dirac_user")]), tmp_path)
        script = str(HERE / "dirac9_catalog_script.py")
        done = subprocess.run(
            [dirac9_python, script, service.url(), f"{HOME}/dirac9"],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        answers = json.loads(done.stdout.strip().splitlines()[-1])
        lfn = f"{HOME}/dirac9/from-dirac9.txt"
        assert answers["whoami"]["Value"]["username"] == "alice"
        assert answers["addFile"]["Value"] == {"Successful": {lfn: True}, "Failed": {}}
        listing = answers["listDirectory"]["Value"]["Successful"][f"{HOME}/dirac9"]
        assert list(listing["Files"]) == [lfn]
        assert answers["getFileMetadata"]["Value"]["Successful"][lfn]["Size"] == 42
        assert answers["creationDateType"] == "datetime"  # our date tag is DIRAC's
        assert "unknown method 'noSuchMethod'" in answers["unknownMethod"]["Message"]
        assert "outside the 64-bit range" in answers["wrongArgument"]["Message"]
        assert answers["removeFile"]["Value"]["Successful"] == {lfn: True}
        assert answers["exists"]["Value"]["Successful"] == {lfn: False}
        assert "Traceback" not in service.log()


def test_dirac9_client_loads_its_configuration_from_our_configuration_server(
    dirac9_python, test_ca, tmp_path, rpc_launcher
):
    from test_config_server import SE, _central  # tests/Core/Tornado

    from rpc_fixtures import service_cfg

    central = tmp_path / "central.cfg"
    central.write_text(_central(test_ca))
    serverCfg = tmp_path / "server.cfg"
    serverCfg.write_text(
        service_cfg(
            test_ca,
            {"Configuration/Server": {}},
            extra=f"DIRAC\n{{\n  Configuration\n  {{\n    CentralFile = {central}\n  }}\n}}\n",
        )
    )
    server = rpc_launcher.start("Configuration/Server", serverCfg)
    clientCfg = tmp_path / "client.cfg"
    clientCfg.write_text(f"DIRAC\n{{\n  Setup = Test\n  Configuration\n  {{\n    Servers = {server.url()}\n  }}\n}}\n")
    proxy = test_ca.proxy("alice", "dirac_user", 3600, tmp_path / "proxy")
    env = dirac9Environment(test_ca, clientCfg, proxy, tmp_path)
    options = [f"{SE}/S3/Path", f"{SE}/S3/Port", "/DIRAC/Configuration/Version"]
    script = str(HERE / "dirac9_config_script.py")
    done = subprocess.run(
        [dirac9_python, script, *options], capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    values = json.loads(done.stdout.strip().splitlines()[-1])
    assert values == {options[0]: "central-bucket", options[1]: "9000", options[2]: "2026-01-01 00:00:00.000000"}


def test_dirac9_user_puts_lists_gets_and_removes_through_our_gateway_and_catalog(
    dirac9_python, site, test_ca, tmp_path
):
    """DIRAC 9's S3 plugin without keys (presigned POST for the put, then head, get, delete through our
    gateway) and DIRAC 9's FileCatalogClient (register, list, remove), with alice's proxy, on moto."""
    from DIRAC.Core.Utilities.Adler import fileAdler

    lfn = f"{HOME}/dirac9/round-trip.dat"
    source = tmp_path / "round-trip.dat"
    source.write_bytes(os.urandom(3000))
    proxy = str(site["proxies"]["alice"])
    setup = tmp_path / "setup.cfg"  # DIRAC 9 wants a setup to look service URLs up
    setup.write_text("DIRAC\n{\n  Setup = Test\n}\n")
    env = dirac9Environment(test_ca, f"{site['folder'] / 'client.cfg'},{setup}", proxy, tmp_path)
    download = tmp_path / "download"
    download.mkdir()
    script = str(HERE / "dirac9_s3_script.py")
    done = subprocess.run(
        [dirac9_python, script, "GW-MOTO", lfn, str(source), str(download)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    url = answers["url"]
    assert answers["putFile"]["Value"]["Successful"] == {url: 3000}, answers["putFile"]
    assert answers["addFile"]["Value"]["Successful"] == {lfn: True}, answers["addFile"]
    listing = answers["listDirectory"]["Value"]["Successful"][f"{HOME}/dirac9"]
    assert list(listing["Files"]) == [lfn]
    assert answers["exists"]["Value"]["Successful"] == {url: True}, answers["exists"]
    metadata = answers["getFileMetadata"]["Value"]["Successful"][url]
    assert (metadata["Size"], metadata["Checksum"]) == (3000, fileAdler(str(source)))
    assert answers["getFile"]["Value"]["Successful"] == {url: 3000}, answers["getFile"]
    assert (download / "round-trip.dat").read_bytes() == source.read_bytes()
    assert answers["removeFile"]["Value"]["Successful"] == {url: True}
    assert answers["removeFromCatalog"]["Value"]["Successful"] == {lfn: True}
    # Catalog and storage agree: nothing left.
    assert answers["existsAfter"]["Value"]["Successful"] == {url: False}
    assert answers["inCatalogAfter"]["Value"]["Successful"] == {lfn: False}

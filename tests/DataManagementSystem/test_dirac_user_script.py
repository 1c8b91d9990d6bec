"""A user script written for DIRAC runs unchanged, as a process, against a site.

The site: a FileCatalog service (real HTTPS RPC, real proxy) and an S3 storage element on rclone.
The script is in DIRAC's style: the ``Script`` header with a switch and arguments,
``StorageElement`` with ``protocolSections``, ``DataManager`` calls, ``DIRAC.exit``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from catalog_fixtures import running_catalog  # noqa: E402
from DIRAC.Core.Utilities.Adler import fileAdler  # noqa: E402
from s3_fixtures import merge_cfg, s3_se_cfg  # noqa: E402

HOME = "/testvo/user/a/alice"

USER_SCRIPT = '''\
#!/usr/bin/env python
"""Store a file, look at it, fetch it back and remove it.

Usage:
  round-trip [options] LFN LocalFile
"""
from DIRAC.Core.Base.Script import Script

Script.registerSwitch("S:", "SE=", "storage element to use")
Script.registerSwitch("k", "keep", "do not remove the file at the end")
Script.registerArgument("LFN: logical file name")
Script.registerArgument("LocalFile: the file to upload")
Script.parseCommandLine(ignoreErrors=True)

import os

from DIRAC import exit as DIRACExit
from DIRAC import gLogger
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.Resources.Storage.StorageElement import StorageElement

seName, keep = "S3-SITE", False
for switch, value in Script.getUnprocessedSwitches():
    if switch in ("S", "SE"):
        seName = value
    elif switch in ("k", "keep"):
        keep = True
lfn, localFile = Script.getPositionalArgs()


def check(result, what):
    if not result["OK"]:
        gLogger.error(what, result["Message"])
        DIRACExit(2)
    if "Failed" in result["Value"] and result["Value"]["Failed"]:
        gLogger.error(what, str(result["Value"]["Failed"]))
        DIRACExit(1)
    return result["Value"]["Successful"] if "Successful" in result["Value"] else result["Value"]


dm = DataManager()
check(dm.putAndRegister(lfn, localFile, seName), "putAndRegister")
se = StorageElement(seName, protocolSections=["S3"])
print("sections", check(se.getProtocolSections(), "getProtocolSections"))
metadata = check(se.getFileMetadata(lfn), "getFileMetadata")[lfn]
print("stored", metadata["Size"], metadata["Checksum"])
print("replicas", sorted(check(dm.getReplicas(lfn), "getReplicas")[lfn]))
os.makedirs("back", exist_ok=True)
check(dm.getFile(lfn, destinationDir="back"), "getFile")
print("fetched", open(os.path.join("back", os.path.basename(lfn)), "rb").read() == open(localFile, "rb").read())
if not keep:
    check(dm.removeFile(lfn), "removeFile")
    print("removed", se.exists(lfn)["Value"]["Successful"][lfn] is False)
DIRACExit(0)
'''


@pytest.fixture
def site(test_ca, rclone_s3_server, tmp_path):
    """A running catalog, an S3 SE, and the client cfg / environment of a user script."""
    bucket = rclone_s3_server.make_bucket()
    with running_catalog(test_ca, tmp_path, facade=True) as (_service, cfgPath, proxies):
        clientCfg = tmp_path / "client.cfg"
        clientCfg.write_text(merge_cfg(cfgPath.read_text(), s3_se_cfg("S3-SITE", rclone_s3_server, bucket)))
        env = dict(
            os.environ,
            DIRACSYSCONFIG=str(clientCfg),
            X509_USER_PROXY=str(proxies[("alice", "dirac_user")]),
            X509_CERT_DIR=str(test_ca.caDir),
            HOME=str(tmp_path),
        )
        yield {"env": env, "folder": tmp_path, "server": rclone_s3_server, "bucket": bucket}


def runScript(site, *args: str) -> subprocess.CompletedProcess:
    script = site["folder"] / "round_trip.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    command = [sys.executable, str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=site["env"], cwd=site["folder"])


def bucketKeys(site) -> list[str]:
    listing = site["server"].client().list_objects_v2(Bucket=site["bucket"])
    return [item["Key"] for item in listing.get("Contents", [])]


def test_dirac_user_script_runs_unchanged_against_a_site(site):
    local = site["folder"] / "data.txt"
    local.write_bytes(b"physics " * 1000)
    lfn = f"{HOME}/script/data.txt"
    done = runScript(site, "-S", "S3-SITE", lfn, str(local), "-d")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "sections ['S3']" in lines
    assert f"stored 8000 {fileAdler(str(local))}" in lines
    assert "replicas ['S3-SITE']" in lines
    assert "fetched True" in lines and "removed True" in lines
    assert bucketKeys(site) == []  # catalog and storage agree: nothing left


def test_dirac_user_script_failure_reports_the_reason_and_leaves_nothing(site):
    local = site["folder"] / "data.txt"
    local.write_bytes(b"x")
    lfn = "/testvo/user/b/bob/not-mine.txt"  # alice may not write in bob's home
    done = runScript(site, lfn, str(local), "--SE=S3-SITE")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "putAndRegister" in done.stdout + done.stderr and "ermission denied" in done.stdout + done.stderr
    assert bucketKeys(site) == []

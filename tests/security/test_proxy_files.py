"""``dirac-proxy-init --out`` against planted names: links, foreign folders; the installed command, as users run it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from DIRAC.Core.Security.X509Certificate import writePrivateFile
from security_fixtures import registry_cfg

COMMAND = Path(sys.executable).parent / "dirac-proxy-init"


@pytest.fixture
def proxy_init(test_ca, tmp_path):
    """Run the installed dirac-proxy-init as alice (bounded), with ``args``."""
    cfg = tmp_path / "dirac.cfg"
    cfg.write_text(registry_cfg(test_ca))
    env = dict(os.environ)
    env.update(
        DIRACSYSCONFIG=str(cfg),
        X509_USER_CERT=test_ca.users["alice"].cert,
        X509_USER_KEY=test_ca.users["alice"].key,
        X509_CERT_DIR=test_ca.caDir,
        HOME=str(tmp_path),
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(COMMAND), *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    return run


def test_out_through_a_planted_symlink_is_refused(proxy_init, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    drop = tmp_path / "drop"
    drop.mkdir()
    link = drop / "x509up"
    link.symlink_to(victim)
    done = proxy_init("--out", str(link))
    assert done.returncode == 1
    assert f"{link} is a symbolic link: refused" in done.stderr
    assert victim.read_text() == "precious\n"
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert sorted(os.listdir(drop)) == ["x509up"]  # no temporary file left behind


def test_out_in_a_folder_everybody_may_write_is_refused(proxy_init, tmp_path):
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    done = proxy_init("--out", str(open_folder / "x509up"))
    assert done.returncode == 1 and "writable by everybody" in done.stderr
    assert os.listdir(open_folder) == []


def test_out_replaces_an_old_proxy_atomically_with_mode_0600(proxy_init, tmp_path):
    target = tmp_path / "x509up"
    target.write_text("old proxy")
    target.chmod(0o644)
    done = proxy_init("--out", str(target))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "BEGIN CERTIFICATE" in target.read_text()
    assert sorted(os.listdir(tmp_path)) == sorted(["x509up", "dirac.cfg"])


def test_sticky_shared_folder_is_accepted_for_our_own_file(tmp_path):
    # /tmp is where proxies live by default: world-writable, but sticky
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    writePrivateFile(str(shared / "x509up"), "secret")
    assert stat.S_IMODE((shared / "x509up").stat().st_mode) == 0o600
    (shared / "link").symlink_to(shared / "x509up")
    with pytest.raises(OSError, match="symbolic link"):
        writePrivateFile(str(shared / "link"), "other")
    assert (shared / "x509up").read_text() == "secret"


def test_a_proxy_planted_at_the_default_location_is_not_used(test_ca, tmp_path, monkeypatch):
    # anybody may create /tmp/x509up_u<uid> before us: a proxy planted there would make our
    # commands act as its owner (uploading our files into their space)
    from DIRAC.Core.Security import Locations
    from DIRAC.Core.Security.ProxyInfo import getProxyInfo

    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    monkeypatch.setattr(Locations, "DEFAULT_PROXY_TEMPLATE", str(tmp_path / "x509up_u{uid}"))
    default = tmp_path / f"x509up_u{os.getuid()}"
    planted = test_ca.proxy("bob", "dirac_user", 600, tmp_path / "bobs-proxy")

    default.symlink_to(planted)
    assert Locations.getProxyLocation() is False
    info = getProxyInfo()
    assert not info["OK"] and "No proxy found" in info["Message"]
    default.unlink()

    if os.geteuid() == 0:  # only root can make a file of another user here
        default.write_bytes(Path(planted).read_bytes())
        os.chown(default, os.getuid() + 4242, -1)
        assert Locations.getProxyLocation() is False
        default.unlink()

    test_ca.proxy("alice", "dirac_user", 600, default)
    assert Locations.getProxyLocation() == str(default)
    assert getProxyInfo()["Value"]["identity"] == test_ca.users["alice"].dn

"""The console scripts dirac-make-test-ca, dirac-proxy-init and dirac-proxy-info, run as subprocesses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from DIRAC.Core.Security.X509Chain import X509Chain
from security_fixtures import make_expired_proxy, registry_cfg

SCRIPT_TIMEOUT = 60  # seconds


def script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a console script to completion (bounded by SCRIPT_TIMEOUT)."""
    return subprocess.run(
        [script(args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False
    )


@pytest.fixture
def script_env(test_ca, tmp_path) -> dict:
    """Environment for the scripts: a temporary dirac.cfg with the registry, alice's certificate, a proxy path."""
    cfg = tmp_path / "dirac.cfg"
    cfg.write_text(registry_cfg(test_ca))
    env = dict(os.environ)
    env.update(
        DIRACSYSCONFIG=str(cfg),
        X509_USER_PROXY=str(tmp_path / "x509up"),
        X509_USER_CERT=test_ca.users["alice"].cert,
        X509_USER_KEY=test_ca.users["alice"].key,
        X509_CERT_DIR=test_ca.caDir,
        HOME=str(tmp_path),
    )
    return env


def test_make_test_ca(tmp_path):
    helpText = run(["dirac-make-test-ca", "--help"]).stdout
    assert "FOR TESTS AND DEMOS, NOT PRODUCTION" in " ".join(helpText.split())
    done = run(["dirac-make-test-ca", str(tmp_path / "ca"), "--host", "server1", "--user", "u1", "--days", "2"])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ca" / "hosts" / "server1" / "hostcert.pem").is_file()
    key = tmp_path / "ca" / "users" / "u1" / "userkey.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "/O=Grid/OU=DIRAC-Test/CN=u1" in done.stdout
    bad = run(["dirac-make-test-ca", str(tmp_path / "ca"), "--user", "../evil"])
    assert bad.returncode != 0 and "../evil" in bad.stderr


def test_proxy_init_default_group_then_info(script_env, test_ca):
    done = run(["dirac-proxy-init", "-v", "2:00"], script_env)
    assert done.returncode == 0, done.stderr
    assert "dirac_user" in done.stdout
    proxyPath = script_env["X509_USER_PROXY"]
    assert stat.S_IMODE(os.stat(proxyPath).st_mode) == 0o600
    chain = X509Chain()
    assert chain.loadProxyFromFile(proxyPath)["OK"]
    assert chain.getDIRACGroup()["Value"] == "dirac_user"
    assert 7000 < chain.getRemainingSecs()["Value"] <= 7200

    info = run(["dirac-proxy-info"], script_env)
    assert info.returncode == 0, info.stderr
    for expected in (
        f"identity    : {test_ca.users['alice'].dn}",
        f"issuer      : {test_ca.users['alice'].dn}",
        "DIRAC group : dirac_user",
        "username    : alice",
        f"path        : {proxyPath}",
        "timeleft    : 0",
    ):
        assert expected in info.stdout, info.stdout


def test_proxy_init_explicit_group_cert_and_out(script_env, test_ca, tmp_path):
    bob = test_ca.users["bob"]
    out = tmp_path / "bobproxy"
    args = ["-g", "dirac_user", "--cert", bob.cert, "--key", bob.key, "--out", str(out)]
    done = run(["dirac-proxy-init", *args], script_env)
    assert done.returncode == 0, done.stderr
    info = run(["dirac-proxy-info", "--file", str(out)], script_env)
    assert info.returncode == 0 and "username    : bob" in info.stdout
    assert not os.path.exists(script_env["X509_USER_PROXY"])

    admin = run(["dirac-proxy-init", "-g", "dirac_admin"], script_env)
    assert admin.returncode == 0, admin.stderr
    assert "DIRAC group : dirac_admin" in run(["dirac-proxy-info"], script_env).stdout


def test_proxy_init_refuses_foreign_group(script_env, test_ca):
    bob = test_ca.users["bob"]
    done = run(["dirac-proxy-init", "-g", "dirac_admin", "--cert", bob.cert, "--key", bob.key], script_env)
    assert done.returncode != 0
    assert "not a member of group dirac_admin" in done.stderr
    assert not os.path.exists(script_env["X509_USER_PROXY"])


def test_proxy_init_refuses_unknown_dn(script_env, unknown_ca):
    mallory = unknown_ca.users["mallory"]
    done = run(["dirac-proxy-init", "--cert", mallory.cert, "--key", mallory.key], script_env)
    assert done.returncode != 0
    assert f"{mallory.dn} is not registered" in done.stderr


def test_proxy_init_bad_validity_and_missing_cert(script_env, tmp_path):
    done = run(["dirac-proxy-init", "-v", "soon"], script_env)
    assert done.returncode != 0 and "HH:MM" in done.stderr
    nope = str(tmp_path / "nope.pem")
    missing = run(["dirac-proxy-init", "--cert", nope, "--key", nope], script_env)
    assert missing.returncode != 0 and "nope.pem" in missing.stderr


def test_proxy_info_without_or_with_expired_proxy(script_env, test_ca, tmp_path):
    none = run(["dirac-proxy-info", "--file", str(tmp_path / "absent")], script_env)
    assert none.returncode != 0 and "absent" in none.stderr
    alice = test_ca.users["alice"]
    expired = make_expired_proxy(alice.cert, alice.key, tmp_path / "old")
    done = run(["dirac-proxy-info", "--file", expired], script_env)
    assert done.returncode != 0
    assert "expired" in done.stderr and "timeleft    : 00:00:00" in done.stdout


def test_proxy_init_with_encrypted_key(script_env, test_ca, tmp_path):
    from M2Crypto import EVP

    alice = test_ca.users["alice"]
    encrypted = tmp_path / "enc_userkey.pem"
    key = EVP.load_key(alice.key)
    encrypted.write_bytes(key.as_pem(cipher="aes_256_cbc", callback=lambda *args: b"s3cret"))
    args = ["dirac-proxy-init", "--cert", alice.cert, "--key", str(encrypted), "--pwstdin"]
    done = subprocess.run(
        [script(args[0]), *args[1:]],
        env=script_env,
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    wrong = subprocess.run(
        [script(args[0]), *args[1:]],
        env=script_env,
        input="wrong\n",
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    assert wrong.returncode != 0 and "private key" in wrong.stderr

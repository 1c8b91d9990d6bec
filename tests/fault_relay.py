"""A fault-injecting, delaying TCP relay on 127.0.0.1 for tests and benchmarks.

``FaultRelay(targetHost, targetPort)`` listens on a free port of 127.0.0.1 and forwards every
connection to the target. It runs an asyncio loop in its own thread; use it as a context manager::

    with FaultRelay("127.0.0.1", server.port, delay=0.010) as relay:   # 20 ms added round trip
        client = makeClient(relay.url)
        reset = relay.add(Fault("reset", method="GET", path=r"/bucket/key$", after=1000))
        ...                       # the client sees the reset
        assert reset.fired == 1   # and the fault did fire (a test whose fault never fires cannot fail)

Delay
-----
``delay`` seconds are added to each direction: every chunk read from one side is written to
the other side at its arrival time + ``delay``, in order, without waiting for the chunks before
it, so the bandwidth is kept (up to ``MAX_IN_FLIGHT`` bytes in flight per direction). A new
connection also costs one round trip before its first bytes reach the server (a TCP handshake to
a far server; ``connectDelay=False`` turns that off). ``relay.delay`` may be changed at any time.

Overhead, measured on this shared 2-core machine: the relay is one Python thread (one core at
most). It spends about 0.15-0.2 ms of CPU per small kept-alive request and its answer (both parsed as
HTTP), so it carries some 5,000 such exchanges a second, and about 0.65 s of CPU per GiB moved
(1 GiB in 1-3 s wall time depending on the load, direct 0.3-1 s), the same with a delay. A
chunk due within ``TIMER_SLACK`` (1 ms) is written at once, so a delay is kept to within 1 ms.

Faults
------
A ``Fault`` applies either per HTTP request (plain HTTP only: the relay parses request and answer
heads and bodies, Content-Length or chunked, to find message boundaries on kept-alive connections)
or per TCP connection (``tcp=True``: works for TLS too, counting raw bytes). A connection is
parsed as HTTP when its first bytes look like a request line; otherwise only TCP faults apply.

====================  =====================================================================
kind                  effect
====================  =====================================================================
``"reset"``           after ``after`` bytes of the answer body (``direction="answer"``) or the
                      request body (``"request"``) are forwarded, abort both sides with RST
                      (TCP level: ``after`` bytes of that direction's stream); an answer fault
                      with ``after=0`` acts before the answer's head, so even a bodiless
                      answer (204, HEAD) never reaches the client
``"stall"``           after ``after`` bytes, forward nothing more in that direction for
                      ``seconds`` (default ``STALL_SECONDS``), then go on
``"close"``           after the matching answer is forwarded, close the client connection
                      (FIN, or RST with ``rst=True``) without telling it: when the client sends
                      its next request (not forwarded: the stale-connection case), or after
                      ``seconds`` of idleness if given. TCP level: close after ``seconds``
                      (default ``IDLE_CLOSE_SECONDS``) with no bytes either way
``"lose"``            forward the whole request, let the server apply it and answer, discard the
                      answer and close the client connection. TCP level: once ``after`` bytes
                      went to the client, the server's bytes that come after the client's next
                      bytes are discarded, and the client side is closed once the server has
                      been quiet ``seconds`` (default ``QUIET_SECONDS``). ``after=0``: the answer
                      to the first request; ``after=1`` over TLS 1.3: the handshake goes through
                      (the server spoke first) and the answer to the first request is lost
``"answer"``          answer ``status`` (default 503) instead of forwarding, with optional
                      ``retryAfter`` and an S3 ``<Error>`` body when ``s3Code`` is given;
                      ``forward=True`` forwards the request (the server applies it) and replaces
                      its answer. ``Fault.slowDown()`` and ``Fault.errorIn200()`` build the usual
                      ones (503 SlowDown, 200 with an ``<Error>`` body)
``"refuse"``          close new connections at once (TCP level; ``rst=True`` for RST)
====================  =====================================================================

Matching: ``method`` (exact, case-insensitive), ``path`` (regex searched in the request target),
``connection`` (1-based number of the connection since the relay started). The first ``skip``
matches are let through, the next ``times`` (default 1) get the fault. ``fault.matched`` and
``fault.fired`` count; ``relay.fired`` lists ``Event`` records of what the relay did, in order,
``relay.requests`` every HTTP request parsed (not those a ``close`` fault swallowed),
``relay.connections`` the connections accepted, ``relay.openConnections()`` the ones still open
(``relay.waitClosed(numbers)`` waits, bounded, for some to close). An event is recorded before the client can
observe its effect. HTTP faults apply from the next request on, TCP faults to connections
accepted after ``add``.

Limits: HTTP pipelining is not supported (clients send a request after the previous answer);
``Expect: 100-continue`` requests get an injected answer at once with ``Connection: close``.
Only the standard library is used, so ``benchmarks/`` can import it too.
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

HOST = "127.0.0.1"
READ_SIZE = 256 * 1024  # bytes per read from a socket
STREAM_LIMIT = 1024 * 1024  # asyncio stream buffer limit
MAX_IN_FLIGHT = 64 * 1024 * 1024  # bytes queued per direction before reading pauses
IDLE_TIMEOUT = 120.0  # a connection with no bytes either way for this long is closed
IO_TIMEOUT = 60.0  # seconds a write may wait for the peer to read
CONNECT_TIMEOUT = 10.0
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
QUIET_TIMEOUT = 60.0  # seconds waitClosed waits at most by default
STALL_SECONDS = 30.0
IDLE_CLOSE_SECONDS = 0.5
QUIET_SECONDS = 0.3
TIMER_SLACK = 0.001  # a chunk due within this many seconds is written at once
MAX_LINE = 64 * 1024  # longest head or chunk-size line accepted before giving up parsing

KINDS = ("reset", "stall", "close", "lose", "answer", "refuse")
TCP_KINDS = ("reset", "stall", "close", "lose", "refuse")
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip
REQUEST_START = re.compile(rb"^[A-Z]{3,10} \S")


# ---------------------------------------------------------------- the public API


@dataclass(eq=False)
class Fault:
    """One fault rule: what to do (``kind`` and its parameters) to which requests or connections.

    See the module docstring for the kinds. ``matched`` counts the requests (connections) that
    matched, ``fired`` the times the fault took effect (a reset after more bytes than the answer
    had never fires).
    """

    kind: str
    method: str | None = None
    path: str | None = None
    connection: int | None = None
    tcp: bool = False
    direction: str = "answer"
    after: int = 0
    seconds: float | None = None
    times: int = 1
    skip: int = 0
    rst: bool = False
    status: int = 503
    retryAfter: int | None = None
    s3Code: str | None = None
    message: str = ""
    forward: bool = False
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind == "refuse":
            self.tcp = True
        if self.tcp and self.kind not in TCP_KINDS:
            raise ValueError(f"fault {self.kind!r} works on plain HTTP only, not with tcp=True")
        if self.tcp and (self.method or self.path):
            raise ValueError("a tcp=True fault matches connections: method and path do not apply")
        if self.direction not in ("answer", "request"):
            raise ValueError(f"direction must be 'answer' or 'request', not {self.direction!r}")
        if self.after < 0 or self.times < 1 or self.skip < 0:
            raise ValueError("after and skip must be >= 0, times >= 1")
        self._pathPattern = re.compile(self.path) if self.path else None

    @classmethod
    def slowDown(cls, status: int = 503, retryAfter: int | None = None, **match) -> Fault:
        """An injected S3 throttling answer: ``status`` with a ``SlowDown`` error document."""
        return cls("answer", status=status, retryAfter=retryAfter, s3Code="SlowDown",
                   message="Please reduce your request rate.", **match)  # fmt: skip

    @classmethod
    def errorIn200(cls, s3Code: str = "InternalError", forward: bool = False, **match) -> Fault:
        """A 200 whose body is an S3 ``<Error>`` document (S3 may answer CompleteMultipartUpload so)."""
        return cls("answer", status=200, s3Code=s3Code, message="We encountered an internal error. Please try again.",
                   forward=forward, **match)  # fmt: skip

    def _matches(self, connection: int, method: str | None = None, target: str | None = None) -> bool:
        if self.connection is not None and self.connection != connection:
            return False
        if self.method is not None and (method or "").upper() != self.method.upper():
            return False
        return self._pathPattern is None or bool(self._pathPattern.search(target or ""))

    def _take(self) -> bool:
        """Count a match; True when this match is one that gets the fault."""
        self.matched += 1
        return self.skip < self.matched <= self.skip + self.times

    def answerBytes(self, requestId: str, close: bool) -> bytes:
        """The injected answer on the wire."""
        body = b""
        if self.s3Code:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{self.s3Code}</Code><Message>{self.message}</Message>"
                f"<RequestId>{requestId}</RequestId></Error>"
            ).encode()
        elif self.message:
            body = self.message.encode()
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Injected')}", f"Content-Length: {len(body)}",
                 f"x-amz-request-id: {requestId}", f"Connection: {'close' if close else 'keep-alive'}"]  # fmt: skip
        if body:
            lines.append("Content-Type: " + ("application/xml" if self.s3Code else "text/plain"))
        if self.retryAfter is not None:
            lines.append(f"Retry-After: {self.retryAfter}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(frozen=True)
class Event:
    """What the relay did: a fault that fired (``kind``), on which connection and request."""

    kind: str
    connection: int
    method: str | None = None
    target: str | None = None
    detail: str = ""
    fault: Fault | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Request:
    """An HTTP request the relay saw (forwarded or not)."""

    connection: int
    method: str
    target: str


class FaultRelay:
    """A TCP relay from ``127.0.0.1:port`` to ``targetHost:targetPort`` with delays and faults.

    Start with ``start()`` or ``with``; ``stop()`` closes the listener and every connection.
    """

    def __init__(
        self,
        targetHost: str,
        targetPort: int,
        delay: float = 0.0,
        *,
        connectDelay: bool = True,
        idleTimeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.targetHost = targetHost
        self.targetPort = targetPort
        self.delay = delay
        self.connectDelay = connectDelay
        self.idleTimeout = idleTimeout
        self.host = HOST
        self.port = 0
        self.connections = 0
        self._rules: list[Fault] = []
        self._fired: list[Event] = []
        self._requests: list[Request] = []
        self._traffic: dict[int, list[int]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._live: set[_Connection] = set()
        self._tasks: set[asyncio.Task] = set()

    # -- life cycle

    def start(self) -> FaultRelay:
        """Start the loop thread and listen on a free port of 127.0.0.1."""
        if self._loop is not None:
            raise RuntimeError("relay already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="FaultRelay", daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(START_TIMEOUT)
        return self

    def stop(self) -> None:
        """Stop listening, abort every connection, end the loop thread (each step bounded)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STOP_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> FaultRelay:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- where it is

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return self.urlFor("http")

    def urlFor(self, scheme: str = "http") -> str:
        """``scheme://127.0.0.1:port`` (``https`` when the target speaks TLS)."""
        return f"{scheme}://{self.host}:{self.port}"

    # -- faults and records

    def add(self, fault: Fault) -> Fault:
        """Add a fault rule (tried after the ones already added); returns it to check ``fired`` later."""
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault rule (records are kept; see ``forget``)."""
        with self._lock:
            self._rules.clear()

    def forget(self) -> None:
        """Empty the records (``fired``, ``requests``)."""
        with self._lock:
            self._fired.clear()
            self._requests.clear()

    @property
    def fired(self) -> list[Event]:
        """The faults that took effect, in order (a copy)."""
        with self._lock:
            return list(self._fired)

    @property
    def requests(self) -> list[Request]:
        """The HTTP requests seen, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def bytesForwarded(self, connection: int) -> tuple[int, int]:
        """(bytes written to the server, bytes written to the client) on connection number ``connection``.

        E.g. to check where a TCP-level reset cut a stream, or how many bytes a TLS handshake takes.
        """
        with self._lock:
            up, down = self._traffic.get(connection, (0, 0))
        return up, down

    def firedKinds(self) -> list[str]:
        """The kinds of ``fired``, in order."""
        return [event.kind for event in self.fired]

    def openConnections(self) -> set[int]:
        """The numbers of the connections still open: a client's, or a killed client's bytes still
        on their way to the server or its answers on their way back."""
        if self._loop is None:
            return set()

        async def numbers() -> set[int]:
            return {connection.number for connection in self._live}

        return asyncio.run_coroutine_threadsafe(numbers(), self._loop).result(STOP_TIMEOUT)

    def waitClosed(self, numbers: Iterable[int], timeout: float = QUIET_TIMEOUT) -> set[int]:
        """Wait (at most ``timeout`` s) until the connections ``numbers`` are closed; the ones still open.

        E.g. before a re-run after a client was killed: what the killed client had sent has
        reached the server and been answered (or cut), so it cannot overlap with the re-run.
        """
        wanted, deadline = set(numbers), time.monotonic() + timeout
        while (left := wanted & self.openConnections()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return left

    # -- inside (loop thread)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, HOST, 0, limit=STREAM_LIMIT, backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._live):
            connection.close(rst=False)
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT / 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        with self._lock:
            self.connections += 1
            number = self.connections
            faults = [rule for rule in self._rules if rule.tcp and rule._matches(number) and rule._take()]
            self._traffic[number] = [0, 0]
        connection = _Connection(self, number, reader, writer)
        self._live.add(connection)
        try:
            await connection.run(faults)
        finally:
            self._live.discard(connection)
            connection.close(rst=False)
            self._tasks.discard(task)

    def _record(self, fault: Fault, connection: int, exchange: _Exchange | None, detail: str) -> None:
        method, target = (exchange.method, exchange.target) if exchange else (None, None)
        with self._lock:
            fault.fired += 1
            self._fired.append(Event(fault.kind, connection, method, target, detail, fault))

    def _matchRequest(self, connection: int, method: str, target: str) -> Fault | None:
        with self._lock:
            self._requests.append(Request(connection, method, target))
            for rule in self._rules:
                if not rule.tcp and rule._matches(connection, method, target) and rule._take():
                    return rule
        return None


# ---------------------------------------------------------------- HTTP framing

HEAD, BODY, END = "head", "body", "end"
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE, _RAW = range(7)


@dataclass
class MessageHead:
    """The parsed head of a request or an answer."""

    startLine: str
    headers: dict[str, str]
    method: str = ""
    target: str = ""
    status: int = 0

    @property
    def interim(self) -> bool:
        """A 1xx answer other than 101: another answer to the same request follows."""
        return 100 <= self.status < 200 and self.status != 101


class HttpFramer:
    """Cut one direction of an HTTP/1.x byte stream into pieces, keeping the raw bytes.

    ``feed(data)`` returns ``(kind, raw, head)`` tuples: ``HEAD`` (raw head bytes, parsed head),
    ``BODY`` (raw body bytes, chunk framing included) and ``END`` (no bytes, the head of the
    message that ended). The bytes of all pieces joined are the bytes fed. Unparseable input
    turns the framer into a pass-through (``BODY`` pieces, never an ``END``).
    """

    def __init__(self, requests: bool, answeredMethod: Callable[[], str] | None = None) -> None:
        self.requests = requests
        self.answeredMethod = answeredMethod or (lambda: "GET")
        self.state = _HEAD
        self.remaining = 0
        self.pending = bytearray()
        self.head: MessageHead | None = None

    def feed(self, data: bytes) -> list[tuple[str, bytes, MessageHead | None]]:
        pieces: list[tuple[str, bytes, MessageHead | None]] = []
        position = 0
        while position < len(data):
            if self.state in (_LENGTH, _CHUNK_DATA):
                take = min(self.remaining, len(data) - position)
                pieces.append((BODY, data[position : position + take], None))
                position += take
                self.remaining -= take
                if self.remaining == 0:
                    if self.state == _LENGTH:
                        pieces.append(self._end())
                    else:
                        self.state = _CHUNK_SIZE
            elif self.state in (_UNTIL_CLOSE, _RAW):
                pieces.append((BODY, data[position:], None))
                position = len(data)
            else:
                self.pending += data[position:]
                position = len(data)
                consumed = self._parseLine(pieces)
                if consumed is None:
                    break
                data, position = bytes(self.pending[consumed:]), 0
                self.pending.clear()
        return pieces

    def eof(self) -> list[tuple[str, bytes, MessageHead | None]]:
        """Pieces the end of the stream completes (an answer delimited by the connection's end)."""
        return [self._end()] if self.state == _UNTIL_CLOSE else []

    def _parseLine(self, pieces: list) -> int | None:
        """Parse a head or a chunk line at the start of ``pending``; the bytes used, None if incomplete."""
        marker = b"\r\n\r\n" if self.state == _HEAD else b"\r\n"
        end = self.pending.find(marker)
        if end < 0:
            if len(self.pending) > MAX_LINE:
                self._giveUp(pieces, len(self.pending))
                return len(self.pending)
            return None
        used = end + len(marker)
        raw = bytes(self.pending[:used])
        try:
            if self.state == _HEAD:
                self._startMessage(raw, pieces)
            elif self.state == _CHUNK_SIZE:
                size = int(raw.split(b";")[0].strip(), 16)
                pieces.append((BODY, raw, None))
                self.state, self.remaining = (_TRAILER, 0) if size == 0 else (_CHUNK_DATA, size + 2)
            else:  # trailer lines, ended by an empty line
                pieces.append((BODY, raw, None))
                if raw == b"\r\n":
                    pieces.append(self._end())
        except (ValueError, IndexError):
            self._giveUp(pieces, used)
        return used

    def _giveUp(self, pieces: list, used: int) -> None:
        pieces.append((BODY, bytes(self.pending[:used]), None))
        self.state = _RAW

    def _startMessage(self, raw: bytes, pieces: list) -> None:
        lines = raw.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        parts = lines[0].split(" ", 2)
        if not (parts[-1 if self.requests else 0].startswith("HTTP/1.") and len(parts) >= 2 + self.requests):
            raise ValueError(f"not an HTTP/1 start line: {lines[0][:80]!r}")
        if self.requests:
            head = MessageHead(lines[0], headers, method=parts[0], target=parts[1])
            hasBody = True
        else:
            head = MessageHead(lines[0], headers, status=int(parts[1]))
            hasBody = not (head.interim or head.status in (204, 304) or self.answeredMethod() == "HEAD")
        self.head = head
        pieces.append((HEAD, raw, head))
        if head.status == 101:
            self.state = _RAW
        elif hasBody and "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = _CHUNK_SIZE
        elif hasBody and "content-length" in headers:
            self.remaining = int(headers["content-length"])
            self.state = _LENGTH if self.remaining else _HEAD
            if not self.remaining:
                pieces.append(self._end())
        elif hasBody and not self.requests:
            self.state = _UNTIL_CLOSE
        else:
            pieces.append(self._end())

    def _end(self) -> tuple[str, bytes, MessageHead | None]:
        self.state = _HEAD
        return (END, b"", self.head)


# ---------------------------------------------------------------- one relayed connection

_DATA, _ACTION, _EOF = 0, 1, 2


@dataclass(eq=False)
class _Exchange:
    """One request and its answer on a connection."""

    method: str
    target: str
    headers: dict[str, str]
    fault: Fault | None
    forwarded: bool = True
    discarding: bool = False
    tripwire: list | None = None


class _Sender:
    """Write one direction's bytes in order, each at its arrival time + delay; run actions in line.

    Tripwires run an action once a number of bytes have been queued (a fault "after N bytes").
    """

    def __init__(
        self, connection: _Connection, writer: asyncio.StreamWriter, counter: list[int], index: int, notBefore: float
    ) -> None:
        self.connection = connection
        self.counter, self.index = counter, index  # counter[index] counts the bytes written
        self.writer = writer
        self.notBefore = notBefore
        self.queue: collections.deque = collections.deque()
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.inFlight = 0
        self.queued = 0
        self.tripwires: list[list] = []  # [offset, action]
        self.busy = False  # run() is handling an item it took off the queue
        self.unsent: list[bytes] = []  # bytes of this read to write at once, in one send (see flush)

    def _enqueue(self, kind: int, payload, extraDelay: float = 0.0) -> None:
        self._writeUnsent()  # they come before anything queued now
        loop = asyncio.get_running_loop()
        due = max(loop.time(), self.notBefore) + self.connection.relay.delay + extraDelay
        self.queue.append((due, kind, payload))
        self.ready.set()

    async def put(self, data: bytes) -> None:
        """Queue bytes (waits while too much is in flight); tripwires inside them cut them."""
        while data:
            wire = min(self.tripwires, key=lambda item: item[0]) if self.tripwires else None
            if wire is None or self.queued + len(data) < wire[0]:
                await self._putData(data)
                return
            cut = max(0, wire[0] - self.queued)
            if cut:
                await self._putData(data[:cut])
            self.tripwires.remove(wire)
            self._enqueue(_ACTION, wire[1])
            data = data[cut:]

    async def _putData(self, data: bytes) -> None:
        self.queued += len(data)
        if not (self.queue or self.busy or self.connection.relay.delay):
            if asyncio.get_running_loop().time() >= self.notBefore:  # nothing to wait for: write at once
                self.unsent.append(data)
                return
        if self.inFlight > MAX_IN_FLIGHT:
            self.room.clear()
            async with asyncio.timeout(IO_TIMEOUT):
                await self.room.wait()
        self.inFlight += len(data)
        self._enqueue(_DATA, data)

    def putAction(self, action: Callable[[], Awaitable[None]], extraDelay: float = 0.0) -> None:
        """Run ``action`` once everything queued before it is written."""
        self._enqueue(_ACTION, action, extraDelay)

    def putEof(self) -> None:
        self._enqueue(_EOF, None)

    def addTripwire(self, after: int, action: Callable[[], Awaitable[None]]) -> list:
        """Run ``action`` once ``after`` more bytes are queued (at once when ``after`` is 0)."""
        wire = [self.queued + after, action]
        if after == 0:
            self._enqueue(_ACTION, action)
        else:
            self.tripwires.append(wire)
        return wire

    def removeTripwire(self, wire: list | None) -> None:
        if wire is not None and wire in self.tripwires:
            self.tripwires.remove(wire)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.connection.closed:
            while not self.queue:
                self.ready.clear()
                async with asyncio.timeout(self.connection.relay.idleTimeout):
                    await self.ready.wait()
            due, kind, payload = self.queue.popleft()
            self.busy = True
            wait = due - loop.time()
            if wait > TIMER_SLACK:  # a shorter sleep costs a loop turn per chunk (timers have ~1 ms grain)
                await asyncio.sleep(wait)
            if kind == _DATA:
                self.inFlight -= len(payload)
                if self.inFlight <= MAX_IN_FLIGHT:
                    self.room.set()
                await self._write(payload)
            elif kind == _ACTION:
                await payload()
            else:
                if self.writer.can_write_eof() and not self.writer.transport.is_closing():
                    self.writer.write_eof()
                return
            self.busy = False

    def _writeUnsent(self) -> None:
        if self.unsent:
            data = self.unsent[0] if len(self.unsent) == 1 else b"".join(self.unsent)
            self.unsent.clear()
            self.writer.write(data)
            self.counter[self.index] += len(data)
            self.connection.lastActivity = asyncio.get_running_loop().time()

    async def flush(self) -> None:
        """Write what the last read let through without waiting (one send for a head and its body)."""
        self._writeUnsent()
        if self.writer.transport.get_write_buffer_size() > STREAM_LIMIT:
            async with asyncio.timeout(IO_TIMEOUT):
                await self.writer.drain()

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        self.counter[self.index] += len(data)
        self.connection.lastActivity = asyncio.get_running_loop().time()
        if self.writer.transport.get_write_buffer_size() > STREAM_LIMIT:
            async with asyncio.timeout(IO_TIMEOUT):
                await self.writer.drain()


class _Connection:
    """One client connection and its connection to the target: two pumps, two senders, the faults."""

    def __init__(self, relay: FaultRelay, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.relay = relay
        self.number = number
        self.clientReader, self.clientWriter = reader, writer
        self.serverWriter: asyncio.StreamWriter | None = None
        self.closed = False
        self.tasks: list[asyncio.Task] = []
        self.lastActivity = asyncio.get_running_loop().time()
        self.http: bool | None = None
        self.awaiting: collections.deque[_Exchange] = collections.deque()
        self.requestFramer = HttpFramer(requests=True)
        self.answerFramer = HttpFramer(requests=False, answeredMethod=self._answeredMethod)
        self.upExchange: _Exchange | None = None
        self.downExchange: _Exchange | None = None
        self.closingAfterAnswer = False
        self.clientSpoke = asyncio.Event()
        self.tcpLose: Fault | None = None
        self.losing = False  # a TCP-level lost answer: the server's bytes are discarded
        self.dropped = 0
        self.lastDrop = 0.0
        self.serverEnded = False
        self.injected = 0

    def _answeredMethod(self) -> str:
        return self.awaiting[0].method if self.awaiting else "GET"

    def record(self, fault: Fault, exchange: _Exchange | None, detail: str) -> None:
        self.relay._record(fault, self.number, exchange, detail)

    def close(self, rst: bool) -> None:
        """Close both sides (RST with ``rst``) and stop the tasks."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.clientWriter, self.serverWriter):
            if writer is None:
                continue
            if rst:
                sock = writer.get_extra_info("socket")
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except (OSError, AttributeError):
                    pass  # already closed
                writer.transport.abort()
            else:
                writer.transport.close()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def run(self, tcpFaults: list[Fault]) -> None:
        loop = asyncio.get_running_loop()
        for fault in tcpFaults:
            if fault.kind == "refuse":
                self.record(fault, None, "connection closed at once")
                self.close(rst=fault.rst)
                return
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                serverReader, self.serverWriter = await asyncio.open_connection(
                    self.relay.targetHost, self.relay.targetPort, limit=STREAM_LIMIT
                )
        except (OSError, TimeoutError):
            self.close(rst=True)
            return
        relay = self.relay
        handshake = loop.time() + 2 * relay.delay if relay.connectDelay else 0.0
        counter = relay._traffic[self.number]
        self.toServer = _Sender(self, self.serverWriter, counter, 0, notBefore=handshake)
        self.toClient = _Sender(self, self.clientWriter, counter, 1, notBefore=0.0)
        self.tasks = [
            asyncio.create_task(self._pump(self.clientReader, self._fromClient, self._clientEof)),
            asyncio.create_task(self._pump(serverReader, self._fromServer, self._serverEof)),
            asyncio.create_task(self.toServer.run()),
            asyncio.create_task(self.toClient.run()),
        ]
        for fault in tcpFaults:
            self._armTcpFault(fault)
        try:
            await asyncio.gather(*self.tasks[:4])
        except (OSError, TimeoutError):
            self.close(rst=True)
        except asyncio.CancelledError:
            if not self.closed:
                raise

    async def _pump(self, reader: asyncio.StreamReader, handle, atEof) -> None:
        loop = asyncio.get_running_loop()
        while True:
            async with asyncio.timeout(self.relay.idleTimeout):
                data = await reader.read(READ_SIZE)
            if not data:
                break
            self.lastActivity = loop.time()
            await handle(data)
            await self.toServer.flush()
            await self.toClient.flush()
        await atEof()

    # -- client -> server

    async def _fromClient(self, data: bytes) -> None:
        if self.tcpLose is not None and not self.losing and self.toClient.queued >= self.tcpLose.after:
            self.losing = True
            self.tasks.append(asyncio.create_task(self._closeWhenQuiet(self.tcpLose)))
        if self.http is None:
            self.http = bool(REQUEST_START.match(data))
        if self.closingAfterAnswer:
            self.clientSpoke.set()  # the server "closed" this connection: nothing more goes through
            return
        if not self.http:
            await self.toServer.put(data)
            return
        for kind, raw, head in self.requestFramer.feed(data):
            await self._requestPiece(kind, raw, head)

    async def _clientEof(self) -> None:
        self.clientSpoke.set()
        self.toServer.putEof()

    async def _requestPiece(self, kind: str, raw: bytes, head: MessageHead | None) -> None:
        if kind == HEAD:
            fault = self.relay._matchRequest(self.number, head.method, head.target)
            exchange = self.upExchange = _Exchange(head.method, head.target, head.headers, fault)
            if fault is not None and fault.kind == "answer" and not fault.forward:
                exchange.forwarded = False
                if "100-continue" in head.headers.get("expect", "").lower():
                    self._inject(exchange, close=True)
                return
            self.awaiting.append(exchange)
            await self.toServer.put(raw)
            if fault is not None and fault.direction == "request" and fault.kind in ("reset", "stall"):
                exchange.tripwire = self.toServer.addTripwire(fault.after, self._faultAction(fault, exchange))
        elif kind == BODY:
            exchange = self.upExchange
            if exchange is None or exchange.forwarded:
                await self.toServer.put(raw)
        else:
            exchange, self.upExchange = self.upExchange, None
            if exchange is None:
                return
            self.toServer.removeTripwire(exchange.tripwire)
            if not exchange.forwarded and "100-continue" not in exchange.headers.get("expect", "").lower():
                self._inject(exchange, close=False, extraDelay=self.relay.delay)

    # -- server -> client

    async def _fromServer(self, data: bytes) -> None:
        if self.losing:
            self.dropped += len(data)
            self.lastDrop = asyncio.get_running_loop().time()
            return
        if not self.http:
            await self.toClient.put(data)
            return
        for kind, raw, head in self.answerFramer.feed(data):
            await self._answerPiece(kind, raw, head)

    async def _serverEof(self) -> None:
        self.serverEnded = True
        if self.http:
            for kind, raw, head in self.answerFramer.eof():
                await self._answerPiece(kind, raw, head)
        self.toClient.putEof()

    async def _answerPiece(self, kind: str, raw: bytes, head: MessageHead | None) -> None:
        if kind == HEAD:
            if head.interim:
                await self.toClient.put(raw)
                return
            exchange = self.downExchange = self.awaiting[0] if self.awaiting else None
            fault = exchange.fault if exchange else None
            if fault is not None and (fault.kind == "lose" or fault.kind == "answer"):
                exchange.discarding = True
                return
            cut = (
                fault
                if fault is not None and fault.direction == "answer" and fault.kind in ("reset", "stall")
                else None
            )
            if cut is not None and cut.after == 0:
                # Before the head: even a bodiless answer (204, HEAD) is reset or delayed whole.
                await self._faultAction(cut, exchange)()
                if cut.kind == "reset":
                    return
                cut = None
            await self.toClient.put(raw)
            if cut is not None:
                exchange.tripwire = self.toClient.addTripwire(fault.after, self._faultAction(fault, exchange))
        elif kind == BODY:
            if self.downExchange is None or not self.downExchange.discarding:
                await self.toClient.put(raw)
        else:
            if head is not None and head.interim:
                return
            exchange, self.downExchange = self.downExchange, None
            if exchange is None:
                return
            if self.awaiting and self.awaiting[0] is exchange:
                self.awaiting.popleft()
            self.toClient.removeTripwire(exchange.tripwire)
            fault = exchange.fault
            if fault is None:
                return
            if fault.kind == "lose":
                self.toClient.putAction(self._loseAction(fault, exchange))
            elif fault.kind == "answer":
                self._inject(exchange, close=False)
            elif fault.kind == "close":
                self.closingAfterAnswer = True
                self.toClient.putAction(self._closeAction(fault, exchange))

    # -- the faults

    def _armTcpFault(self, fault: Fault) -> None:
        if fault.kind in ("reset", "stall"):
            sender = self.toClient if fault.direction == "answer" else self.toServer
            sender.addTripwire(fault.after, self._faultAction(fault, None))
        elif fault.kind == "lose":
            self.tcpLose = fault
        elif fault.kind == "close":
            self.tasks.append(asyncio.create_task(self._closeWhenIdle(fault)))

    def _faultAction(self, fault: Fault, exchange: _Exchange | None) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            if fault.kind == "reset":
                self.record(fault, exchange, f"RST after {fault.after} bytes of the {fault.direction}")
                self.close(rst=True)
            else:
                seconds = STALL_SECONDS if fault.seconds is None else fault.seconds
                self.record(fault, exchange, f"{seconds} s pause after {fault.after} bytes of the {fault.direction}")
                await asyncio.sleep(seconds)

        return action

    def _loseAction(self, fault: Fault, exchange: _Exchange) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            self.record(fault, exchange, "answer discarded, connection closed")
            self.close(rst=fault.rst)

        return action

    def _closeAction(self, fault: Fault, exchange: _Exchange) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            seconds = self.relay.idleTimeout if fault.seconds is None else fault.seconds
            try:
                async with asyncio.timeout(seconds):
                    await self.clientSpoke.wait()
                detail = "closed when the client sent again"
            except TimeoutError:
                detail = f"closed after {seconds} s idle"
            self.record(fault, exchange, detail)
            self.close(rst=fault.rst)

        return action

    def _inject(self, exchange: _Exchange, close: bool, extraDelay: float = 0.0) -> None:
        fault = exchange.fault
        self.injected += 1
        answer = fault.answerBytes(f"relay-{self.number}-{self.injected}", close)

        async def action() -> None:
            self.record(fault, exchange, f"answered {fault.status}" + (" after forwarding" if fault.forward else ""))
            self.clientWriter.write(answer)
            if close:
                self.close(rst=False)

        self.toClient.putAction(action, extraDelay)

    async def _closeWhenQuiet(self, fault: Fault) -> None:
        loop = asyncio.get_running_loop()
        quiet = QUIET_SECONDS if fault.seconds is None else fault.seconds
        deadline = loop.time() + self.relay.idleTimeout
        while loop.time() < deadline:
            await asyncio.sleep(quiet / 4)
            if self.serverEnded or (self.dropped and loop.time() - self.lastDrop >= quiet):
                break
        self.record(fault, None, f"{self.dropped} answer bytes discarded, client side closed")
        self.close(rst=fault.rst)

    async def _closeWhenIdle(self, fault: Fault) -> None:
        loop = asyncio.get_running_loop()
        idle = IDLE_CLOSE_SECONDS if fault.seconds is None else fault.seconds
        deadline = loop.time() + self.relay.idleTimeout
        while loop.time() < deadline:
            wait = self.lastActivity + idle - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self.record(fault, None, f"closed after {idle} s idle")
        self.close(rst=fault.rst)

"""From an HTTPS request to a handler call and back.

Wire protocol: ``POST /<System>/<Service>`` with a JSON body
``{"method": name, "args": [...]}`` (optionally ``"delegatedDN"`` and
``"delegatedGroup"``); the answer is the JSON of an S_OK/S_ERROR dict. Every
problem, malformed input included, is answered with an S_ERROR naming the cause;
the HTTP status (400, 401, 403, 404, 405, 413, 500) only mirrors it for logs and
tools like curl.

DIRAC 9's clients post a form instead (see ``DIRAC9Protocol``); such a request is
told apart by its Content-Type and answered in DIRAC's encoding, always with HTTP
200 (what its client expects). Delegation works the same in both dialects: only a
host with the TrustedHost property may act for a user.

The body is received here on the IO loop (refused past the service's
``MaxRequestSize`` without being kept in memory); everything after that
(credentials, authorization, argument checks, the call, JSON encoding) runs in
the server's bounded thread pool so that slow handlers never block the loop.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass

import tornado.ioloop
import tornado.web

from DIRAC.Core.DISET.AuthManager import (
    KW_GROUP,
    KW_USERNAME,
    anonymousCredentials,
    resolveCredentials,
    resolveDelegation,
)
from DIRAC.Core.DISET.RequestHandler import EXPORT_PREFIX, checkArguments
from DIRAC.Core.Tornado import DIRAC9Protocol, Serialization
from DIRAC.Core.Tornado.Server.PeerIdentity import PeerIdentity, getPeerIdentity
from DIRAC.Core.Tornado.Server.ServiceLoader import ServiceEntry
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK, isReturnStructure
from DIRAC.FrameworkSystem.Client.Logger import gLogger

_log = gLogger.getSubLogger("RPC")
# Bodies over the limit are read and discarded, to answer a clear error instead of
# dropping the connection, up to this hard limit (beyond it tornado drops it).
HARD_LIMIT_FACTOR = 8
HARD_LIMIT_MINIMUM = 256 * 1024 * 1024
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class RPCRequest:
    """One call as the caller asked it, whatever its dialect."""

    method: str
    args: list
    delegatedDN: str | None = None
    delegatedGroup: str | None = None
    dialect: str = Serialization.JSON
    rawContent: bool = False

    @property
    def delegates(self) -> bool:
        """Whether the caller asks to act for someone else."""
        return self.delegatedDN is not None or self.delegatedGroup is not None


def hardBodyLimit(maxRequestSize: int) -> int:
    """The size past which a request body is not even read."""
    return max(maxRequestSize * HARD_LIMIT_FACTOR, HARD_LIMIT_MINIMUM)


def parsePayload(body: bytes) -> dict:
    """S_OK(RPCRequest) of our JSON body, or S_ERROR(why the request is malformed)."""
    if not body:
        return S_ERROR(DErrno.EVALUE, 'empty request body: expected JSON {"method": ..., "args": [...]}')
    try:
        payload = Serialization.decode(body)
    except ValueError as exc:
        return S_ERROR(DErrno.EVALUE, f"request body is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        return S_ERROR(DErrno.EVALUE, f"request body must be a JSON object, got {type(payload).__name__}")
    method = payload.get("method")
    if not isinstance(method, str) or not method:
        return S_ERROR(DErrno.EVALUE, 'request has no "method" string')
    args = payload.get("args", [])
    if not isinstance(args, list):
        return S_ERROR(DErrno.EVALUE, f'"args" must be a JSON list, got {type(args).__name__}')
    unknown = set(payload) - {"method", "args", "delegatedDN", "delegatedGroup"}
    if unknown:
        return S_ERROR(DErrno.EVALUE, f"unknown request fields: {', '.join(sorted(unknown))}")
    return S_OK(RPCRequest(method, args, payload.get("delegatedDN"), payload.get("delegatedGroup")))


def parseRequest(body: bytes, contentType: str = "") -> dict:
    """S_OK(RPCRequest) in either dialect (``DIRAC9Protocol.isForm`` tells which), or S_ERROR(why)."""
    if not DIRAC9Protocol.isForm(contentType, body):
        return parsePayload(body)
    parsed = DIRAC9Protocol.parseForm(body)
    if not parsed["OK"]:
        return parsed
    return S_OK(RPCRequest(dialect=Serialization.DIRAC9, **parsed["Value"]))


def _callerCredentials(peer: PeerIdentity, request: RPCRequest) -> tuple[dict, str]:
    """(credentials, refusal reason or "") for the peer, delegation applied."""
    resolved = resolveCredentials(peer.DN, peer.group, peer.isProxy)
    if not resolved["OK"]:
        return anonymousCredentials(peer.DN, peer.isProxy), resolved["Message"]
    credentials = resolved["Value"]
    if request.delegates:
        if request.delegatedDN is None:
            return credentials, "delegatedGroup given without delegatedDN"
        delegated = resolveDelegation(credentials, request.delegatedDN, request.delegatedGroup)
        if not delegated["OK"]:
            return credentials, delegated["Message"]
        credentials = delegated["Value"]
    return credentials, ""


def executeCall(entry: ServiceEntry, request: RPCRequest, peer: PeerIdentity, remoteAddress: str) -> tuple[int, dict]:
    """(HTTP status, S_OK/S_ERROR) for one parsed request from an identified peer."""
    method = request.method
    if method.startswith("_") or not callable(getattr(entry.handlerClass, EXPORT_PREFIX + method, None)):
        return 400, S_ERROR(DErrno.ENOMETH, f"unknown method {method!r} of service {entry.name}")
    credentials, refusal = _callerCredentials(peer, request)
    if refusal and request.delegates:
        _log.warn("Refused delegation", f"{peer.DN} -> {method}: {refusal}")
        return 403, S_ERROR(DErrno.ENOAUTH, refusal)
    allowed = entry.authManager.authorize(method, credentials, refusal)
    if not allowed["OK"]:
        who = f"{peer.DN} ({credentials.get(KW_GROUP)})"
        _log.warn("Unauthorized", f"{who} -> {entry.name}.{method}: {allowed['Message']}")
        return 403, allowed
    checked = checkArguments(entry.handlerClass, method, request.args)
    if not checked["OK"]:
        return 400, checked
    handler = entry.handlerClass(entry.serviceInfo, credentials, remoteAddress)
    start = time.monotonic()
    try:
        result = getattr(handler, EXPORT_PREFIX + method)(*checked["Value"])
    except Exception:  # noqa: BLE001 - the caller gets a message, the log gets the traceback
        _log.exception(f"Exception in {entry.name}.{method}", f"called by {credentials.get(KW_USERNAME)}")
        return 500, S_ERROR(DErrno.EEEXCEPTION, f"{entry.name}.{method} failed on the server, see server log")
    if not isReturnStructure(result):
        _log.error(f"{entry.name}.{method} returned a value that is not S_OK/S_ERROR", repr(result)[:200])
        return 500, S_ERROR(f"{entry.name}.{method} returned an invalid value, see server log")
    _log.verbose(
        f"{entry.name}.{method}",
        f"by {credentials.get(KW_USERNAME)}@{credentials.get(KW_GROUP)} "
        f"OK={result['OK']} in {1000 * (time.monotonic() - start):.1f} ms ({request.dialect})",
    )
    return 200, result


@dataclass(frozen=True)
class Reply:
    """What goes back on the wire: HTTP status, Content-Type and body."""

    status: int
    body: bytes
    contentType: str = JSON_CONTENT_TYPE


def encodeResult(entry: ServiceEntry, status: int, result: dict, dialect: str = Serialization.JSON) -> Reply:
    """The answer in the caller's dialect; an answer JSON cannot carry becomes an S_ERROR.

    A DIRAC 9 caller gets every answer with HTTP 200 (see ``DIRAC9Protocol``).
    """
    if dialect == Serialization.DIRAC9:
        status = 200
    try:
        return Reply(status, Serialization.encode(result, dialect))
    except (TypeError, ValueError) as exc:
        _log.error(f"Cannot encode the answer of {entry.name}", str(exc))
        error = S_ERROR(DErrno.ETYPE, f"the answer cannot be sent as JSON: {exc}")
        return Reply(200 if dialect == Serialization.DIRAC9 else 500, Serialization.encode(error, dialect))


def rawResult(status: int, result: dict) -> Reply:
    """The raw bytes of an S_OK(bytes or str) for a DIRAC 9 ``rawContent`` call.

    Anything else cannot be told apart from file content by the caller, so it goes back
    with an HTTP error status (at least 400) whose body names the cause.
    """
    value = result.get("Value")
    if result["OK"] and isinstance(value, (bytes, str)):
        return Reply(200, value.encode("utf-8") if isinstance(value, str) else value, "application/octet-stream")
    if result["OK"]:
        result = S_ERROR(DErrno.ETYPE, f"rawContent asked for, but the answer is a {type(value).__name__}")
    return Reply(max(status, 400), Serialization.encode(result, Serialization.DIRAC9))


def runCall(entry: ServiceEntry, body: bytes, contentType: str, peer: PeerIdentity, remoteAddress: str) -> Reply:
    """Parse, ``executeCall``, encode: the whole pooled part of a request."""
    parsed = parseRequest(body, contentType)
    if not parsed["OK"]:
        dialect = Serialization.DIRAC9 if DIRAC9Protocol.isForm(contentType, body) else Serialization.JSON
        return encodeResult(entry, 400, parsed, dialect)
    request = parsed["Value"]
    status, result = executeCall(entry, request, peer, remoteAddress)
    if request.rawContent:
        return rawResult(status, result)
    return encodeResult(entry, status, result, request.dialect)


class _JSONReplyMixin:
    def _dialect(self) -> str:
        """The caller's dialect as far as the headers tell (before the body is read)."""
        contentType = self.request.headers.get("Content-Type", "")
        return Serialization.DIRAC9 if DIRAC9Protocol.isForm(contentType, b"") else Serialization.JSON

    def _reply(self, status: int, payload: Reply | dict) -> None:
        if isinstance(payload, dict):
            dialect = self._dialect()
            payload = Reply(200 if dialect == Serialization.DIRAC9 else status, Serialization.encode(payload, dialect))
        self.set_status(payload.status)
        self.set_header("Content-Type", payload.contentType)
        self.finish(payload.body)

    def compute_etag(self) -> None:
        return None

    def write_error(self, status_code: int, **kwargs) -> None:
        # Unexpected failures in the server itself: JSON like every other answer, no traceback.
        self.set_header("Content-Type", JSON_CONTENT_TYPE)
        error = S_ERROR(f"server error {status_code} ({self._reason}), see server log")
        self.finish(Serialization.encode(error, self._dialect()))


@tornado.web.stream_request_body
class RPCWebHandler(_JSONReplyMixin, tornado.web.RequestHandler):
    """The tornado handler of one service path."""

    def initialize(self, entry: ServiceEntry, executor: Executor) -> None:
        self.entry = entry
        self.executor = executor
        self._chunks: list[bytes] = []
        self._received = 0
        self._tooBig = False

    def prepare(self) -> None:
        limit = self.entry.maxRequestSize
        if self.request.method == "POST":
            self.request.connection.set_max_body_size(hardBodyLimit(limit))
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            self._tooBig = True

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.entry.maxRequestSize:
            self._tooBig = True
            self._chunks = []
        elif not self._tooBig:
            self._chunks.append(chunk)

    async def post(self) -> None:
        if self._tooBig:
            self._reply(
                413,
                S_ERROR(
                    DErrno.EFBIG,
                    f"request of {self._received} bytes exceeds the limit of {self.entry.maxRequestSize} bytes "
                    f"of {self.entry.name}",
                ),
            )
            return
        stream = self.request.connection.stream
        identity = getPeerIdentity(stream.socket, cacheOn=stream)
        if not identity["OK"]:
            self._reply(401, identity)
            return
        body = b"".join(self._chunks)
        self._chunks = []
        loop = tornado.ioloop.IOLoop.current()
        contentType = self.request.headers.get("Content-Type", "")
        reply = await loop.run_in_executor(
            self.executor, runCall, self.entry, body, contentType, identity["Value"], self.request.remote_ip or ""
        )
        self._reply(reply.status, reply)

    def get(self) -> None:
        self._reply(
            405,
            S_ERROR(DErrno.EVALUE, f'{self.entry.name} takes POST with a JSON body {{"method": ..., "args": [...]}}'),
        )


class UnknownPathHandler(_JSONReplyMixin, tornado.web.RequestHandler):
    """Every path that is not a service served here."""

    def initialize(self, services: list[str]) -> None:
        self.services = services

    def _unknown(self) -> None:
        path = self.request.path
        self._reply(
            404, S_ERROR(DErrno.ENOMETH, f"no service at {path}; this server has {', '.join(self.services) or 'none'}")
        )

    def get(self) -> None:
        self._unknown()

    def post(self) -> None:
        self._unknown()

"""From an HTTPS request to a handler call and back.

Wire protocol: ``POST /<System>/<Service>`` with a JSON body
``{"method": name, "args": [...]}`` (optionally ``"delegatedDN"`` and
``"delegatedGroup"``); the answer is the JSON of an S_OK/S_ERROR dict. Every
problem, malformed input included, is answered with an S_ERROR naming the cause;
the HTTP status (400, 401, 403, 404, 405, 413, 500) only mirrors it for logs and
tools like curl.

The body is received here on the IO loop (refused past the service's
``MaxRequestSize`` without being kept in memory); everything after that
(credentials, authorization, argument checks, the call, JSON encoding) runs in
the server's bounded thread pool so that slow handlers never block the loop.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor

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
from DIRAC.Core.Tornado import Serialization
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


def hardBodyLimit(maxRequestSize: int) -> int:
    """The size past which a request body is not even read."""
    return max(maxRequestSize * HARD_LIMIT_FACTOR, HARD_LIMIT_MINIMUM)


def parsePayload(body: bytes) -> dict:
    """S_OK(dict with method, args, delegatedDN, delegatedGroup) or S_ERROR(why the request is malformed)."""
    if not body:
        return S_ERROR(DErrno.EVALUE, 'empty request body: expected JSON {"method": ..., "args": [...]}')
    try:
        payload = Serialization.decode(body)
    except (ValueError, UnicodeDecodeError) as exc:
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
    return S_OK(
        {
            "method": method,
            "args": args,
            "delegatedDN": payload.get("delegatedDN"),
            "delegatedGroup": payload.get("delegatedGroup"),
        }
    )


def _callerCredentials(peer: PeerIdentity, request: dict) -> tuple[dict, str]:
    """(credentials, refusal reason or "") for the peer, delegation applied."""
    resolved = resolveCredentials(peer.DN, peer.group, peer.isProxy)
    if not resolved["OK"]:
        return anonymousCredentials(peer.DN, peer.isProxy), resolved["Message"]
    credentials = resolved["Value"]
    if request.get("delegatedDN") is not None or request.get("delegatedGroup") is not None:
        if request.get("delegatedDN") is None:
            return credentials, "delegatedGroup given without delegatedDN"
        delegated = resolveDelegation(credentials, request["delegatedDN"], request.get("delegatedGroup"))
        if not delegated["OK"]:
            return credentials, delegated["Message"]
        credentials = delegated["Value"]
    return credentials, ""


def executeCall(entry: ServiceEntry, body: bytes, peer: PeerIdentity, remoteAddress: str) -> tuple[int, dict]:
    """(HTTP status, S_OK/S_ERROR) for one request body from an identified peer."""
    parsed = parsePayload(body)
    if not parsed["OK"]:
        return 400, parsed
    request = parsed["Value"]
    method = request["method"]
    if method.startswith("_") or not callable(getattr(entry.handlerClass, EXPORT_PREFIX + method, None)):
        return 400, S_ERROR(DErrno.ENOMETH, f"unknown method {method!r} of service {entry.name}")
    credentials, refusal = _callerCredentials(peer, request)
    if refusal and (request.get("delegatedDN") is not None or request.get("delegatedGroup") is not None):
        _log.warn("Refused delegation", f"{peer.DN} -> {method}: {refusal}")
        return 403, S_ERROR(DErrno.ENOAUTH, refusal)
    allowed = entry.authManager.authorize(method, credentials, refusal)
    if not allowed["OK"]:
        who = f"{peer.DN} ({credentials.get(KW_GROUP)})"
        _log.warn("Unauthorized", f"{who} -> {entry.name}.{method}: {allowed['Message']}")
        return 403, allowed
    checked = checkArguments(entry.handlerClass, method, request["args"])
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
        f"OK={result['OK']} in {1000 * (time.monotonic() - start):.1f} ms",
    )
    return 200, result


def encodeResult(entry: ServiceEntry, status: int, result: dict) -> tuple[int, bytes]:
    """JSON bytes of the answer; an answer JSON cannot carry becomes an S_ERROR."""
    try:
        return status, Serialization.encode(result)
    except (TypeError, ValueError) as exc:
        _log.error(f"Cannot encode the answer of {entry.name}", str(exc))
        return 500, Serialization.encode(S_ERROR(DErrno.ETYPE, f"the answer cannot be sent as JSON: {exc}"))


def runCall(entry: ServiceEntry, body: bytes, peer: PeerIdentity, remoteAddress: str) -> tuple[int, bytes]:
    """``executeCall`` then ``encodeResult``: the whole pooled part of a request."""
    status, result = executeCall(entry, body, peer, remoteAddress)
    return encodeResult(entry, status, result)


class _JSONReplyMixin:
    def _reply(self, status: int, payload: bytes | dict) -> None:
        if isinstance(payload, dict):
            payload = Serialization.encode(payload)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload)

    def compute_etag(self) -> None:
        return None

    def write_error(self, status_code: int, **kwargs) -> None:
        # Unexpected failures in the server itself: JSON like every other answer, no traceback.
        self.set_header("Content-Type", "application/json")
        self.finish(Serialization.encode(S_ERROR(f"server error {status_code} ({self._reason}), see server log")))


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
        status, payload = await loop.run_in_executor(
            self.executor, runCall, self.entry, body, identity["Value"], self.request.remote_ip or ""
        )
        self._reply(status, payload)

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

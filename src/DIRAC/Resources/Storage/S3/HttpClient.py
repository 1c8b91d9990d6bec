"""The one HTTP transport of the S3 plugin: authorised requests sent through urllib3.

Signing happens before (``Signers``); this module only moves bytes, for direct and
presigned requests alike. urllib3 is botocore's own transport: one pool of
keep-alive connections per endpoint, shared by all threads, sized to the worker
count; a kept-alive connection the server has closed is detected before reuse.
Retries (``urllib3.util.Retry``, exponential backoff with jitter, ``Retry-After``
honoured and capped):

* connection failures before the request went out: always;
* a broken connection or a timeout after it went out, and HTTP 500/502/504 or a
  retryable S3 error code: only for idempotent requests (GET, HEAD, DELETE, and
  PUT with a body that can be sent again);
* 429 and 503 (``SlowDown``), and a 200 whose body is an S3 ``<Error>`` with a
  retryable code (``InternalError``, as CompleteMultipartUpload may answer): always,
  the server did not apply the request;
* TLS errors: never (they do not heal), and they are reported as TLS errors.

A server that closes an idle connection just as it is reused (no answer, no
reset) is retried once on a new connection (idempotent requests only), even with
``Retries = 0``. A body that breaks while it is read raises ``TransferInterrupted``
(the caller resumes it: see ``Parts.receiveBody``). Proxies come from the
environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``), which urllib3 does
not read itself.
"""

from __future__ import annotations

import http.client
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.retry import RequestHistory, Retry

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Errors import RETRYABLE_CODES, parseError

READ_CHUNK = 1024 * 1024
SEND_BLOCK = 1024 * 1024  # bytes read from a file body per send (urllib3's default is 16 KiB)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REFUSED_STATUSES = frozenset({429, 503})  # the server did not apply the request: safe to resend any request
BACKOFF_FACTOR = 0.1  # seconds; doubled at each retry
BACKOFF_JITTER = 0.1  # seconds of random spread, so that many workers do not retry in step
BACKOFF_MAX = 20.0
RETRY_AFTER_MAX = 60  # seconds; a longer Retry-After is cut to this
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_BODY_ERRORS = (HTTPError, OSError, http.client.HTTPException)


class TransferInterrupted(Exception):
    """The connection broke or stalled while a response body was being read."""


#: whether this thread's last request went out on a kept-alive connection that had served one before
_sentOnReused = threading.local()


class _CountingConnection:
    """Remembers how many requests went out on the current socket (a new socket starts at 0)."""

    _requestsOnSocket = 0

    def connect(self) -> None:
        super().connect()
        self._requestsOnSocket = 0

    def request(self, *args: Any, **kwargs: Any) -> None:
        _sentOnReused.value = self.sock is not None and self._requestsOnSocket > 0
        super().request(*args, **kwargs)  # may connect() first: the count restarts there
        self._requestsOnSocket += 1


class _HTTPConnection(_CountingConnection, HTTPConnection):
    pass


class _HTTPSConnection(_CountingConnection, HTTPSConnection):
    pass


class S3Retry(Retry):
    """urllib3's ``Retry`` plus one free retry when a kept-alive connection was closed unanswered.

    A server closing a kept-alive connection just as a request goes out on it shows as
    ``RemoteDisconnected`` on a connection that had served a request before (no answer at
    all); sending an idempotent request again on a new connection is safe and is not counted
    against the configured retries. The same on a new connection, a reset or a timeout are
    counted.
    """

    def __init__(self, *args: Any, staleRetry: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.staleRetry = staleRetry

    def new(self, **kwargs: Any) -> S3Retry:
        kwargs.setdefault("staleRetry", self.staleRetry)
        return super().new(**kwargs)

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        """The server's ``Retry-After`` in seconds, at most ``RETRY_AFTER_MAX``."""
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, RETRY_AFTER_MAX)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None) -> S3Retry:
        cause = error.args[1] if isinstance(error, ProtocolError) and len(error.args) > 1 else None
        stale = isinstance(cause, http.client.RemoteDisconnected) and getattr(_sentOnReused, "value", False)
        if self.staleRetry and stale:
            return self.new(staleRetry=False, history=(*self.history, RequestHistory(method, url, error, None, None)))
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exc:
            exc.attempts = len(self.history) + 1
            raise


@dataclass
class S3Response:
    """Status, headers (lower-case names) and, unless streamed, the body of one answer."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: urllib3.BaseHTTPResponse | None = field(default=None, repr=False)
    where: str = ""
    #: the S3 error code of an ``<Error>`` document sent with a 2xx status ('' when none)
    embeddedError: str = ""
    #: how many times the request was sent (above 1, an earlier attempt may have been applied)
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """True for a 2xx answer that is not an error in disguise."""
        return 200 <= self.status < 300 and not self.embeddedError

    def chunks(self, size: int = READ_CHUNK) -> Iterator[bytes]:
        """The streamed body in chunks of at most ``size`` bytes.

        Raises ``TransferInterrupted`` when the connection breaks or stalls (no byte
        for ReadTimeout seconds) before the body is complete.
        """
        if self.stream is None:
            return
        received = 0
        try:
            while chunk := self.stream.read1(size):  # what has arrived, up to size: no refilling copies
                received += len(chunk)
                yield chunk
        except ReadTimeoutError as exc:
            self.abandon()
            raise TransferInterrupted(
                f"network error: {self.where} stalled after {received} bytes of the body (no data for {exc})"
            ) from exc
        except _BODY_ERRORS as exc:
            self.abandon()
            raise TransferInterrupted(
                f"network error: connection to {self.where} broke after {received} bytes of the body: {_reason(exc)}"
            ) from exc
        self.stream.release_conn()

    def abandon(self) -> None:
        """Stop reading a streamed body: its connection is closed, never reused half-read."""
        if self.stream is not None:
            self.stream.close()
            self.stream.release_conn()

    def userMetadata(self) -> dict[str, str]:
        """``x-amz-meta-*`` headers with lower-case names (servers differ in case)."""
        prefix = "x-amz-meta-"
        return {name[len(prefix) :]: value for name, value in self.headers.items() if name.startswith(prefix)}

    def errorCode(self) -> str:
        """The S3 error code of an error answer (``NoSuchBucket``...), '' when absent."""
        return self.embeddedError or parseError(self.body)[0]

    def errorMessage(self) -> str:
        """The server's own words in an error answer, '' when absent."""
        return parseError(self.body)[1]


def isRewindable(body: Any) -> bool:
    """Can ``body`` be sent again on a retry (bytes, or a file whose position can be restored)?"""
    return body is None or isinstance(body, (bytes, bytearray, str)) or callable(getattr(body, "seek", None))


class S3HttpClient:
    """Sends authorised requests through one urllib3 pool per endpoint, shared by all threads."""

    def __init__(
        self,
        connectTimeout: float,
        readTimeout: float,
        retries: int,
        verify: bool | str = True,
        maxConnections: int = 16,
    ):
        self.retries = retries
        self.timeout = urllib3.Timeout(connect=connectTimeout, read=readTimeout)
        self._poolOptions: dict[str, Any] = {
            "maxsize": maxConnections,
            "block": False,
            "timeout": self.timeout,
            "blocksize": SEND_BLOCK,
            **_tlsOptions(verify),
        }
        #: the first Retry of each request (immutable: urllib3 makes a new one per retry), by idempotence
        self._retries = {idempotent: self._retry(idempotent) for idempotent in (True, False)}
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._pools: dict[tuple, tuple[Any, bool]] = {}
        self._lock = threading.Lock()

    # -- connection pools

    def _pool(self, scheme: str, netloc: str) -> tuple[Any, bool]:
        """(connection pool for the endpoint, whether it goes through an http proxy in absolute form)."""
        key = (scheme, netloc, *(os.environ.get(name) for name in _PROXY_VARIABLES))
        found = self._pools.get(key)
        if found is not None:
            return found
        with self._lock:
            proxy = _proxyFor(scheme, netloc)
            manager = self._managers.get(proxy)
            if manager is None:
                if proxy:
                    manager = urllib3.ProxyManager(proxy, num_pools=32, **self._poolOptions)
                else:
                    manager = urllib3.PoolManager(num_pools=32, **self._poolOptions)
                self._managers[proxy] = manager
            pool = manager.connection_from_url(f"{scheme}://{netloc}")
            pool.ConnectionCls = _HTTPSConnection if scheme == "https" else _HTTPConnection
            found = self._pools[key] = (pool, bool(proxy) and scheme == "http")
            return found

    def _retry(self, idempotent: bool) -> S3Retry:
        return S3Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries if idempotent else 0,
            status=self.retries,
            other=0,  # TLS and other protocol errors do not heal by retrying
            redirect=0,
            allowed_methods=None,  # every method: which requests may be resent is decided here
            status_forcelist=RETRY_STATUSES if idempotent else REFUSED_STATUSES,
            backoff_factor=BACKOFF_FACTOR,
            backoff_jitter=BACKOFF_JITTER,
            backoff_max=BACKOFF_MAX,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
            staleRetry=idempotent,
        )

    # -- requests

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> dict:
        """S_OK(S3Response) for any HTTP answer; S_ERROR when the server cannot be reached.

        ``body``: bytes, a file object (streamed; rewound for a retry) or an iterable
        of bytes (streamed, never resent); a file or iterable needs ``Content-Length``
        in ``headers``. With ``stream`` the caller reads ``chunks()`` of a 2xx answer.
        ``idempotent`` (default: GET, HEAD, DELETE, and PUT with a resendable body)
        allows resending after the request may have reached the server.
        """
        parts = urlsplit(url)
        pool, absoluteForm = self._pool(parts.scheme, parts.netloc)
        target = url if absoluteForm else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS and isRewindable(body)
        retry = self._retries[idempotent]
        where = f"{parts.scheme}://{parts.netloc}"
        bodyStart = body.tell() if callable(getattr(body, "tell", None)) else None
        while True:
            try:
                raw = pool.urlopen(
                    method,
                    target,
                    body=body,
                    headers=headers or {},
                    retries=retry,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                )
            except MaxRetryError as exc:
                _forgetFailedAttempts(exc)
                return _unreachable(f"{method} {where}{parts.path}", where, exc.reason, getattr(exc, "attempts", 1))
            except HTTPError as exc:
                _forgetFailedAttempts(exc)
                return _unreachable(f"{method} {where}{parts.path}", where, exc, 1)
            _forgetFailedAttempts(raw.retries)
            answerHeaders = {name.lower(): value for name, value in raw.headers.items()}
            attempts = len(raw.retries.history) + 1 if raw.retries else 1
            response = S3Response(raw.status, answerHeaders, where=where, attempts=attempts)
            if stream and 200 <= raw.status < 300 and method != "HEAD":
                response.stream = raw
                return S_OK(response)
            try:
                response.body = raw.read()
            except _BODY_ERRORS as exc:
                raw.close()
                raw.release_conn()
                message = f"{method} {where}{parts.path}: connection broke in the answer: {_reason(exc)}"
                return S_ERROR(DErrno.EIO, message)
            raw.release_conn()
            if 200 <= raw.status < 300 and b"<Error>" in response.body[:512]:
                response.embeddedError = parseError(response.body)[0]
            code = response.errorCode() if not response.ok else ""
            if code not in RETRYABLE_CODES or not (idempotent or response.embeddedError):
                return S_OK(response)
            try:  # a retryable S3 error code the HTTP status alone did not show (400 RequestTimeout, 200 <Error>)
                retry = (raw.retries or retry).increment(method, url, response=raw)
            except MaxRetryError:
                return S_OK(response)
            retry.sleep(raw)
            if not isRewindable(body):
                return S_OK(response)
            if bodyStart is not None:
                body.seek(bodyStart)


def _forgetFailedAttempts(holder: Retry | BaseException | None) -> None:
    """Drop the tracebacks of the errors of a request's failed attempts (in ``holder``'s retry history,
    or ``holder`` itself and the exceptions chained to it).

    urllib3 keeps each attempt's exception, whose traceback holds the frame that sent the
    attempt, which holds that exception: a reference cycle that keeps the request body
    (a part of up to 5 GiB) alive until the garbage collector runs, so a retried part
    would outlive its part worker and break the part size x part workers memory bound.
    """
    pending: list[Any] = [holder]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Retry):
            pending.extend(entry.error for entry in item.history)
        elif isinstance(item, BaseException):
            item.__traceback__ = None
            pending += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]


def _reason(exc: BaseException) -> str:
    """The innermost useful words of a network exception."""
    while isinstance(exc, (MaxRetryError, ProtocolError, ProxyError)) and exc.args:
        inner = exc.reason if isinstance(exc, MaxRetryError) else exc.args[-1]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _unreachable(request: str, where: str, reason: Any, attempts: int) -> dict:
    """S_ERROR for a request that got no HTTP answer, named by what went wrong."""
    tries = f"({attempts} attempt{'s' if attempts > 1 else ''})"
    if isinstance(reason, SSLError):
        return S_ERROR(DErrno.EIO, f"TLS error with {where} ({request}): {_reason(reason)}")
    if isinstance(reason, ProxyError):
        return S_ERROR(DErrno.ECONNREFUSED, f"{request}: the HTTP proxy failed {tries}: {_reason(reason)}")
    if isinstance(reason, NewConnectionError):
        return S_ERROR(DErrno.ECONNREFUSED, f"{request}: cannot connect to {where} {tries}: {_reason(reason)}")
    if isinstance(reason, ConnectTimeoutError):
        return S_ERROR(DErrno.ETIMEDOUT, f"{request}: connecting to {where} timed out {tries}")
    if isinstance(reason, ReadTimeoutError):
        return S_ERROR(DErrno.ETIMEDOUT, f"{request}: no answer from {where} within the read timeout {tries}")
    return S_ERROR(DErrno.EIO, f"{request}: network error {tries}: {_reason(reason)}")


def _proxyFor(scheme: str, netloc: str) -> str | None:
    """The proxy URL the environment sets for ``scheme://netloc``, None for a direct connection."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(netloc):
        return None
    return proxy


def _tlsOptions(verify: bool | str) -> dict[str, Any]:
    """urllib3 TLS options: ``verify`` False (no check), True (system CAs) or a CA file or folder."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE", "assert_hostname": False}
    if isinstance(verify, str):
        key = "ca_cert_dir" if os.path.isdir(verify) else "ca_certs"
        return {"cert_reqs": "CERT_REQUIRED", key: verify}
    return {"cert_reqs": "CERT_REQUIRED"}

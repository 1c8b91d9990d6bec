"""A small, fast HTTP executor for S3 requests that are already authorised.

Why not a boto3 client: on a 2-core machine bulk work on small objects is bound
by client CPU, and botocore's request pipeline costs about 1 ms per call. Signing
stays with botocore (see ``Signers``); this module only moves bytes, on one
keep-alive connection per thread and endpoint, with timeouts and bounded retries
on connection errors and 5xx answers.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

READ_CHUNK = 4 * 1024 * 1024
_RETRY_STATUSES = {500, 502, 503, 504}
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


@dataclass
class S3Response:
    """Status, headers (lower-case names) and, unless streamed, the body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: http.client.HTTPResponse | None = field(default=None, repr=False)
    connection: http.client.HTTPConnection | None = field(default=None, repr=False)

    def chunks(self, size: int = READ_CHUNK) -> Iterator[bytes]:
        """The streamed body in chunks of at most ``size`` bytes."""
        while self.stream is not None and (chunk := self.stream.read(size)):
            yield chunk

    def abandon(self) -> None:
        """Stop reading a streamed body: close its connection so it is not reused half-read."""
        if self.connection is not None:
            self.connection.close()

    def userMetadata(self) -> dict[str, str]:
        """``x-amz-meta-*`` headers with lower-case names (servers differ in case)."""
        prefix = "x-amz-meta-"
        return {name[len(prefix) :]: value for name, value in self.headers.items() if name.startswith(prefix)}

    def errorCode(self) -> str:
        """The S3 error code of an error answer (``NoSuchBucket``...), '' when absent."""
        try:
            return ElementTree.fromstring(self.body).findtext("Code") or ""
        except ElementTree.ParseError:
            return ""


class S3HttpClient:
    """Sends authorised requests; one persistent connection per (thread, endpoint)."""

    def __init__(self, connectTimeout: float, readTimeout: float, retries: int, verify: bool | str = True):
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.retries = retries
        self._local = threading.local()
        self._sslContext = _makeSSLContext(verify)

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        connections = self._local.__dict__.setdefault("connections", {})
        key = (scheme, netloc)
        connection = connections.get(key)
        if connection is None:
            if scheme == "https":
                connection = http.client.HTTPSConnection(netloc, timeout=self.connectTimeout, context=self._sslContext)
            else:
                connection = http.client.HTTPConnection(netloc, timeout=self.connectTimeout)
            connections[key] = connection
        return connection

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._local.__dict__.get("connections", {}).pop((scheme, netloc), None)
        if connection is not None:
            connection.close()

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: bytes | Callable[[], bytes] | None = None,
        stream: bool = False,
    ) -> dict:
        """S_OK(S3Response) for any HTTP answer; S_ERROR when the server cannot be reached.

        ``body`` may be a callable returning the bytes, so a retry can re-read them.
        With ``stream`` the caller must consume ``chunks()`` of a 2xx answer.
        """
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lastError = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 5.0))
            connection = self._connection(parts.scheme, parts.netloc)
            try:
                payload = body() if callable(body) else body
                connection.timeout = self.connectTimeout
                connection.request(method, target or "/", body=payload, headers=headers or {})
                if connection.sock is not None:
                    connection.sock.settimeout(self.readTimeout)
                raw = connection.getresponse()
                response = S3Response(raw.status, {k.lower(): v for k, v in raw.getheaders()})
                if stream and 200 <= raw.status < 300 and method != "HEAD":
                    response.stream, response.connection = raw, connection
                else:
                    response.body = raw.read()
                if raw.status in _RETRY_STATUSES and attempt < self.retries:
                    lastError = f"HTTP {raw.status} {response.errorCode()}"
                    continue
                return S_OK(response)
            except TimeoutError as exc:
                self._drop(parts.scheme, parts.netloc)
                lastError = f"timed out ({exc})"
            except _NETWORK_ERRORS as exc:
                self._drop(parts.scheme, parts.netloc)
                lastError = f"{type(exc).__name__}: {exc}"
        errno = DErrno.ETIMEDOUT if "timed out" in lastError else DErrno.ECONNREFUSED
        where = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return S_ERROR(errno, f"{method} {where} failed after {self.retries + 1} attempts: {lastError}")


def _makeSSLContext(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()

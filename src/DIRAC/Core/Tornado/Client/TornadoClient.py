"""The client side of the HTTPS RPC: credentials, kept-alive sessions and URL fail-over.

``TornadoClient("System/Service" or "https://host:port/System/Service", ...)``
posts ``{"method": ..., "args": [...]}`` and returns the S_OK/S_ERROR the service
answered; transport problems become an S_ERROR too, it never raises.

* URLs: a full ``https://`` URL (or a comma list of them), or a service name
  resolved through ``/Systems/<System>/URLs/<Service>`` (comma list).
* Fail-over: the URLs are tried in random order, those that failed in the last
  minute last. The next URL is tried only when the request certainly did not
  reach a service (connection refused, TCP or TLS handshake failure or timeout),
  or when the method is idempotent (``isIdempotent``: read methods by their name,
  plus the client's ``idempotentMethods``). A read timeout or a connection lost
  after a non-idempotent request was sent is reported (the call may have run),
  never sent again; an answer (an S_ERROR from the service is an answer) is never
  failed over. When no URL could be reached the error has Errno ``ECONNREFUSED``:
  the caller knows the call did not run anywhere.
* Credentials: the user's proxy (``proxyLocation`` or ``Locations.getProxyLocation()``),
  or the host certificate when ``useCertificates=True`` or
  ``/DIRAC/Security/UseServerCertificate`` is true. The server certificate is
  verified against the CA folder (``Locations.getCAsLocation()``) and the host name.
* Dialect: ``rpcProtocol="json"`` (ours, the default) or ``"dirac9"`` (DIRAC 9's form
  and encoding, see ``DIRAC9Protocol``), else ``/DIRAC/RPCProtocol``. Our services
  understand both, so ``dirac9`` is the setting for a client that talks to DIRAC 9
  services (alone or next to ours). In that dialect a delegation travels as DIRAC's
  ``extraCredentials``, and the ``VO`` and ``setup`` keywords (DIRAC's) fill
  ``clientVO`` and ``clientSetup``.
* Connections: one ``requests.Session`` per thread and credentials, kept alive and
  reused by every client object of that thread; one ``SSLContext`` per credential
  files (reloaded when a file changes).
"""

from __future__ import annotations

import datetime
import os
import random
import re
import ssl
import threading
import time
import traceback
import urllib.parse
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Tornado import DIRAC9Protocol, Serialization
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK, isReturnStructure
from DIRAC.FrameworkSystem.Client.Logger import gLogger

DEFAULT_TIMEOUT = 120.0
MAX_CONNECT_TIMEOUT = 10.0
BAN_SECONDS = 60.0
_log = gLogger.getSubLogger("RPCClient")

# URL -> time until which it is tried last, after a transport failure.
_banned: dict[str, float] = {}
_bannedLock = threading.Lock()
# (cert, key, CA folder) -> (file stamps, SSLContext, notAfter or None); a renewed proxy replaces its entry.
_contexts: dict[tuple, tuple[tuple, ssl.SSLContext, float | None]] = {}
_contextsLock = threading.Lock()
_threadSessions = threading.local()

_TLS_ALERTS = {
    "certificate expired": "the server refused our certificate: it has expired",
    "unknown ca": "the server refused our certificate: it does not trust its CA",
    "certificate required": "the server requires a client certificate",
    "bad certificate": "the server refused our certificate as invalid",
    "certificate revoked": "the server refused our certificate: it is revoked",
    "certificate unknown": "the server refused our certificate: it could not verify it",
}
# With TLS 1.3 the server checks the client certificate after the client thinks the
# handshake is over; when it closes the connection, the alert saying why may be lost.
_TLS_CLOSED = (
    "the server closed the TLS connection without answering: it probably refused our certificate "
    "(unknown CA, expired, or not a valid proxy); the server log says why"
)
SERVER_CLOSED = "the server closed the connection"
LARGE_REQUEST = 1024 * 1024
JSON_TYPE = "application/json"
#: Method names that only read (a read prefix, then a capital or nothing): sending one twice changes nothing.
_READ_METHOD = re.compile(r"(get|list|exists|is|has|ping|echo|whoami)([A-Z]|$)")
#: Stack frames of the connection set-up: an error raised under them means the request was not sent.
_CONNECT_FRAMES = {"_validate_conn", "_new_conn", "do_handshake", "create_connection"}
MAYBE_RAN = "the request was sent, the answer was lost: the call may have run; not sent again"


def isIdempotent(method: str, declared: tuple[str, ...] | list[str] = ()) -> bool:
    """True when sending ``method`` twice is harmless: a read method by its name, or declared so by the client."""
    return method in declared or _READ_METHOD.match(method) is not None


def requestNotSent(exc: BaseException) -> bool:
    """True when a requests exception certainly happened before the request left (nothing can have run).

    Connection refused, TCP connect timeout, any failure during the TLS handshake
    (urllib3 reports a handshake timeout as a read timeout, so the frames of the
    chained exceptions tell where it happened) and a TLS alert refusing our
    certificate. A TLS connection cut after the request left is not among them.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError) and "ALERT" in str(exc).upper():
        return True  # the server refused our credentials with a TLS alert: it ran nothing
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            return True
        frames = traceback.extract_tb(current.__traceback__) if current.__traceback__ else []
        if any(frame.name in _CONNECT_FRAMES for frame in frames):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return False


# URLs


def resolveURLs(target: str) -> dict:
    """S_OK([https URLs]) for a URL, a comma list of URLs, or a ``System/Service`` name."""
    target = str(target).strip()
    if "://" in target:
        urls = [url.strip() for url in target.split(",") if url.strip()]
    else:
        parts = target.strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            return S_ERROR(DErrno.EVALUE, f"{target!r} is neither a URL nor a System/Service name")
        option = f"/Systems/{parts[0]}/URLs/{parts[1]}"
        urls = gConfig.getValue(option, [])
        if not urls:
            return S_ERROR(DErrno.ECONF, f"no URL for service {target}: set {option}")
    for url in urls:
        if not url.lower().startswith("https://"):
            return S_ERROR(DErrno.EPROTONOSUPPORT, f"{url}: only https:// URLs are accepted (mutual TLS)")
    return S_OK(urls)


def orderURLs(urls: list[str]) -> list[str]:
    """Random order, URLs that failed recently last."""
    now = time.monotonic()
    with _bannedLock:
        late = {url for url in urls if _banned.get(url, 0) > now}
    fresh = [url for url in urls if url not in late]
    stale = [url for url in urls if url in late]
    random.shuffle(fresh)
    random.shuffle(stale)
    return fresh + stale


def markFailed(url: str) -> None:
    """Try ``url`` last for the next ``BAN_SECONDS`` (done after each transport failure)."""
    with _bannedLock:
        _banned[url] = time.monotonic() + BAN_SECONDS


def clearFailed(url: str | None = None) -> None:
    """Forget the failure of ``url`` (of every URL when None)."""
    with _bannedLock:
        if url is None:
            _banned.clear()
        else:
            _banned.pop(url, None)


# Credentials and TLS


def credentialFiles(useCertificates: bool | None = None, proxyLocation: str | None = None) -> dict:
    """S_OK((cert file, key file, description)) of the credentials to present."""
    from DIRAC.Core.Security import Locations

    if useCertificates is None:
        useCertificates = gConfig.getValue("/DIRAC/Security/UseServerCertificate", False)
    if useCertificates:
        found = Locations.getHostCertificateAndKeyLocation()
        if not found:
            return S_ERROR(DErrno.ENOCERT, "no host certificate and key found (see /DIRAC/Security/CertFile, KeyFile)")
        return S_OK((found[0], found[1], f"host certificate {found[0]}"))
    if proxyLocation:
        if not os.path.isfile(proxyLocation):
            return S_ERROR(DErrno.ENOPROXY, f"no proxy found at {proxyLocation}, run dirac-proxy-init")
        path = proxyLocation
    else:
        path = Locations.getProxyLocation()
        if not path:
            where = Locations.getDefaultProxyLocation()
            return S_ERROR(DErrno.ENOPROXY, f"no proxy found at {where}, run dirac-proxy-init")
    return S_OK((path, path, f"proxy {path}"))


def _notAfter(certFile: str) -> dict:
    """S_OK(expiry timestamp or None) of the credentials in ``certFile``."""
    try:
        from DIRAC.Core.Security.X509Chain import X509Chain
    except ImportError:
        return S_OK(None)
    chain = X509Chain()
    loaded = chain.loadChainFromFile(certFile)
    if not loaded["OK"]:
        return S_ERROR(DErrno.ECERTREAD, f"cannot read {certFile}: {loaded['Message']}")
    expired = chain.hasExpired()
    if expired["OK"] and expired["Value"]:
        return S_ERROR(DErrno.ECERTEXPIRED, f"{certFile} has expired, run dirac-proxy-init")
    getter = getattr(chain, "getNotAfterDate", None)
    if getter is not None:
        result = getter()
        if result["OK"] and hasattr(result["Value"], "timestamp"):
            value = result["Value"]
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.UTC)
            return S_OK(value.timestamp())
    return S_OK(None)


def clientSSLContext(certFile: str, keyFile: str) -> dict:
    """S_OK(SSLContext) presenting these credentials and trusting the CA folder; cached per file version."""
    from DIRAC.Core.Security import Locations

    caPath = Locations.getCAsLocation()
    if not caPath:
        return S_ERROR(DErrno.ENOCERT, "no CA folder found (X509_CERT_DIR or /etc/grid-security/certificates)")
    try:
        stamps = tuple((os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in (certFile, keyFile))
    except OSError as exc:
        return S_ERROR(DErrno.ECERTREAD, f"cannot read credentials: {exc}")
    slot = (certFile, keyFile, caPath)
    with _contextsLock:
        cached = _contexts.get(slot)
    if cached is None or cached[0] != stamps:
        expiry = _notAfter(certFile)
        if not expiry["OK"]:
            return expiry
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_verify_locations(capath=caPath)
            context.load_cert_chain(certFile, keyFile)
        except (OSError, ssl.SSLError) as exc:
            return S_ERROR(DErrno.ECERTREAD, f"cannot use {certFile} with CA folder {caPath}: {exc}")
        cached = (stamps, context, expiry["Value"])
        with _contextsLock:
            _contexts[slot] = cached
    _, context, notAfter = cached
    if notAfter is not None and time.time() >= notAfter:
        return S_ERROR(DErrno.ECERTEXPIRED, f"{certFile} has expired, run dirac-proxy-init")
    return S_OK((slot + (stamps,), context))


class _SSLContextAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections all use one prepared SSLContext (client cert + CA folder)."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **poolKwargs: Any) -> None:
        poolKwargs["ssl_context"] = self._context
        super().init_poolmanager(connections, maxsize, block, **poolKwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):  # noqa: ANN001 - requests' signature
        hostParams, poolKwargs = super().build_connection_pool_key_attributes(request, True, None)
        poolKwargs.pop("ca_certs", None)
        poolKwargs.pop("ca_cert_dir", None)
        poolKwargs["cert_reqs"] = "CERT_REQUIRED"
        return hostParams, poolKwargs

    def cert_verify(self, conn, url, verify, cert) -> None:  # noqa: ANN001 - requests' signature
        # Trust comes from the context (CA folder), never from certifi or the environment.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


def sessionFor(contextKey: tuple, context: ssl.SSLContext) -> requests.Session:
    """This thread's kept-alive session for these credentials (``contextKey`` from ``clientSSLContext``).

    A session made for an older version of the same files (a renewed proxy) is closed and replaced.
    """
    sessions = getattr(_threadSessions, "sessions", None)
    if sessions is None:
        sessions = _threadSessions.sessions = {}
    slot, version = contextKey[:-1], contextKey[-1]
    current = sessions.get(slot)
    if current is not None and current[0] == version:
        return current[1]
    if current is not None:
        current[1].close()
    session = requests.Session()
    session.trust_env = False  # no HTTP proxies or netrc from the environment for service calls
    session.mount("https://", _SSLContextAdapter(context, pool_connections=8, pool_maxsize=4))
    session.mount("http://", HTTPAdapter(max_retries=0))
    sessions[slot] = (version, session)
    return session


def closeThreadSessions() -> None:
    """Close this thread's kept-alive connections."""
    for _, session in getattr(_threadSessions, "sessions", {}).values():
        session.close()
    _threadSessions.sessions = {}


def describeTransportError(exc: Exception) -> str:
    """A short human reason for a requests exception (TLS alerts spelled out)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError) or "SSL" in text:
        match = re.search(r"\[SSL: ([A-Z0-9_]+)\] ([^(\]']+)", text)
        detail = match.group(2).strip() if match else text
        if "EOF occurred in violation of protocol" in text or "UNEXPECTED_EOF" in text:
            return _TLS_CLOSED
        for alert, meaning in _TLS_ALERTS.items():
            if alert in detail.lower():
                return f"{meaning} ({detail})"
        if match and "CERTIFICATE_VERIFY_FAILED" in match.group(1):
            return f"cannot verify the server certificate: {detail}"
        return f"TLS error: {detail}"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"timed out ({exc.__class__.__name__})"
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return SERVER_CLOSED
    return text


class TornadoClient:
    """Calls methods of one service; see the module documentation."""

    def __init__(
        self,
        serviceName: str,
        timeout: float | None = None,
        useCertificates: bool | None = None,
        delegatedDN: str | None = None,
        delegatedGroup: str | None = None,
        proxyLocation: str | None = None,
        rpcProtocol: str | None = None,
        idempotentMethods: tuple[str, ...] | list[str] = (),
        **kwargs: Any,
    ) -> None:
        self.serviceName = serviceName
        self.idempotentMethods = tuple(idempotentMethods)
        self.timeout = float(timeout) if timeout else DEFAULT_TIMEOUT
        self.useCertificates = useCertificates
        self.delegatedDN = delegatedDN
        self.delegatedGroup = delegatedGroup
        self.proxyLocation = proxyLocation
        self.rpcProtocol = rpcProtocol
        self.extraOptions = kwargs

    def __repr__(self) -> str:
        return f"<TornadoClient {self.serviceName}>"

    def _dialect(self) -> str:
        """The wire dialect of this client (keyword, else ``/DIRAC/RPCProtocol``, else ours)."""
        if self.rpcProtocol is None:
            self.rpcProtocol = gConfig.getValue("/DIRAC/RPCProtocol", Serialization.JSON)
        return self.rpcProtocol

    def _body(self, method: str, args: tuple) -> dict:
        """S_OK(request body bytes) in this client's dialect."""
        if self._dialect() not in Serialization.DIALECTS:
            choices = ", ".join(Serialization.DIALECTS)
            return S_ERROR(DErrno.ECONF, f"unknown RPC protocol {self.rpcProtocol!r}: expected one of {choices}")
        if self.rpcProtocol == Serialization.DIRAC9:
            return self._diracForm(method, args)
        payload: dict[str, Any] = {"method": method, "args": list(args)}
        if self.delegatedDN:
            payload["delegatedDN"] = self.delegatedDN
        if self.delegatedGroup:
            payload["delegatedGroup"] = self.delegatedGroup
        try:
            return S_OK(Serialization.encode(payload))
        except (TypeError, ValueError) as exc:
            return S_ERROR(DErrno.ETYPE, f"cannot send the arguments of {method}: {exc}")

    def _diracForm(self, method: str, args: tuple) -> dict:
        """S_OK(urlencoded form) of a call as DIRAC 9's client posts it."""
        if self.delegatedDN:
            extra: Any = [self.delegatedDN, self.delegatedGroup]
        else:
            extra = DIRAC9Protocol.HOSTS_CREDENTIALS if self.useCertificates and not self.proxyLocation else None
        form = DIRAC9Protocol.buildForm(
            method, args, extra, self.extraOptions.get("VO", ""), self.extraOptions.get("setup", "")
        )
        if not form["OK"]:
            return form
        return S_OK(urllib.parse.urlencode(form["Value"]).encode("ascii"))

    def _prepare(self) -> dict:
        urls = resolveURLs(self.serviceName)
        if not urls["OK"]:
            return urls
        credentials = credentialFiles(self.useCertificates, self.proxyLocation)
        if not credentials["OK"]:
            return credentials
        certFile, keyFile, _ = credentials["Value"]
        context = clientSSLContext(certFile, keyFile)
        if not context["OK"]:
            return context
        key, sslContext = context["Value"]
        return S_OK((urls["Value"], sessionFor(key, sslContext)))

    def executeRPC(self, method: str, *args: Any) -> dict:
        """Call ``method(*args)`` on the service: its S_OK/S_ERROR, or S_ERROR when no URL answered."""
        try:
            return self._execute(method, args)
        except Exception as exc:  # noqa: BLE001 - a client call returns an error, it never raises
            _log.exception(f"Unexpected error calling {self.serviceName}.{method}")
            return S_ERROR(DErrno.ERPC, f"cannot call {self.serviceName}.{method}: unexpected {exc!r}")

    def _execute(self, method: str, args: tuple) -> dict:
        if not isinstance(method, str) or not method or method.startswith("_"):
            return S_ERROR(DErrno.EVALUE, f"invalid method name {method!r}")
        body = self._body(method, args)
        if not body["OK"]:
            return body
        prepared = self._prepare()
        if not prepared["OK"]:
            return prepared
        urls, session = prepared["Value"]
        timeouts = (min(MAX_CONNECT_TIMEOUT, self.timeout), self.timeout)
        resend = isIdempotent(method, self.idempotentMethods)
        failures = []
        notSentAnywhere = True
        for url in orderURLs(urls):
            result = self._post(session, url, body["Value"], timeouts, resend)
            if "answer" in result:
                if _banned:
                    clearFailed(url)
                return result["answer"]
            markFailed(url)
            failures.append(f"{url}: {result['transport']}")
            notSentAnywhere = notSentAnywhere and result["notSent"]
            if not result["notSent"] and not resend:
                break  # the call may have run there: running it again elsewhere could run it twice
            _log.verbose("Failing over", f"{url}: {result['transport']}")
        # ECONNREFUSED: no URL took the request, so the call did not run anywhere.
        return S_ERROR(
            DErrno.ECONNREFUSED if notSentAnywhere else DErrno.ERPC,
            f"cannot call {self.serviceName}.{method}: " + "; ".join(failures),
        )

    def _post(self, session: requests.Session, url: str, body: bytes, timeouts: tuple, resend: bool) -> dict:
        """{"answer": S_OK/S_ERROR} when the service answered, else {"transport": reason, "notSent": bool}.

        ``notSent`` is True only when the request certainly never reached the service.
        A kept-alive connection lost under a request is retried once on a fresh one,
        only for an idempotent call (``resend``).
        """
        dialect = self._dialect()
        headers = {"Content-Type": DIRAC9Protocol.FORM_CONTENT_TYPE if dialect == Serialization.DIRAC9 else JSON_TYPE}
        for attempt in range(2):
            try:
                response = session.post(url, data=body, headers=headers, timeout=timeouts)
                break
            except requests.exceptions.RequestException as exc:
                reason = describeTransportError(exc)
                notSent = requestNotSent(exc)
                if attempt == 0 and reason == SERVER_CLOSED and (resend or notSent):
                    continue
                if isinstance(exc, requests.exceptions.ConnectionError) and len(body) > LARGE_REQUEST:
                    reason += f" (the request was {len(body)} bytes: it may be over the server's size limit)"
                if not notSent and not resend:
                    reason += f"; {MAYBE_RAN}"
                return {"transport": reason, "notSent": notSent}
        try:
            answer = Serialization.decode(response.content, dialect)
        except ValueError:  # UnicodeDecodeError included
            answer = None
        if isReturnStructure(answer):
            return {"answer": answer}
        snippet = response.text[:200].strip() if response.content else "(empty)"
        return {"transport": f"HTTP {response.status_code} without an RPC answer: {snippet}", "notSent": False}

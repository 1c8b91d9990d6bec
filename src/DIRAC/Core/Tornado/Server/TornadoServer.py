"""``TornadoServer``: one HTTPS server process hosting one or more services.

TLS is Python's ``ssl`` with mutual authentication: the server presents the host
certificate, requires a client certificate verified against the CA folder
(``capath``, hashed names) and accepts RFC 3820 proxy chains
(``VERIFY_ALLOW_PROXY_CERTS``). Each service answers at
``https://<host>:<port>/<System>/<Service>``.

Use ``startTornado()`` in a server's main thread (stops on SIGTERM/SIGINT) or
``startInThread()`` to serve from a background thread (tests, benchmarks); both
end with ``stop()``.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

import tornado.httpserver
import tornado.netutil
import tornado.web

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Tornado.Server.RequestDispatcher import RPCWebHandler, UnknownPathHandler, hardBodyLimit
from DIRAC.Core.Tornado.Server.ServiceLoader import ServiceEntry, loadService, serviceSectionPath, splitServiceName
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger

DEFAULT_MAX_THREADS = 16
IDLE_CONNECTION_TIMEOUT = 600
_log = gLogger.getSubLogger("TornadoServer")


def _securityLocations(certFile: str | None, keyFile: str | None, caPath: str | None) -> dict:
    """S_OK((cert, key, CA folder)), filling what is not given from ``Locations``."""
    from DIRAC.Core.Security import Locations

    if not (certFile and keyFile):
        found = Locations.getHostCertificateAndKeyLocation()
        if not found:
            return S_ERROR(DErrno.ENOCERT, "no host certificate and key found (see /DIRAC/Security/CertFile, KeyFile)")
        certFile, keyFile = found
    caPath = caPath or Locations.getCAsLocation()
    if not caPath:
        return S_ERROR(DErrno.ENOCERT, "no CA folder found (X509_CERT_DIR or /etc/grid-security/certificates)")
    return S_OK((certFile, keyFile, caPath))


def serverSSLContext(certFile: str, keyFile: str, caPath: str) -> dict:
    """S_OK(SSLContext) requiring client certificates from the CA folder, proxies allowed."""
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_RENEGOTIATION
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
        context.load_cert_chain(certFile, keyFile)
        context.load_verify_locations(capath=caPath)
    except (OSError, ssl.SSLError) as exc:
        return S_ERROR(DErrno.ECERTREAD, f"cannot set up TLS with {certFile} / CA folder {caPath}: {exc}")
    return S_OK(context)


def configuredPort(serviceName: str) -> dict:
    """S_OK(port) from ``/Systems/<System>/Services/<Service>/Port``; a clear S_ERROR when missing or invalid."""
    split = splitServiceName(serviceName)
    if not split["OK"]:
        return split
    path = f"{serviceSectionPath(*split['Value'])}/Port"
    raw = gConfig.getValue(path, "")
    if not str(raw).strip():
        return S_ERROR(DErrno.ECONF, f"{path} is not set: give the service a port")
    try:
        port = int(str(raw).strip())
    except ValueError:
        return S_ERROR(DErrno.ECONF, f"{path} = {raw!r} is not a port number")
    if not 0 < port < 65536:
        return S_ERROR(DErrno.ECONF, f"{path} = {port} is not a valid port")
    return S_OK(port)


class TornadoServer:
    """Serve ``services`` (``System/Service`` names) over HTTPS on one port."""

    def __init__(
        self,
        services: list[str] | str,
        port: int | None = None,
        host: str = "0.0.0.0",
        handlers: dict[str, type] | None = None,
        maxThreads: int | None = None,
        certFile: str | None = None,
        keyFile: str | None = None,
        caPath: str | None = None,
    ) -> None:
        """``handlers`` maps a service name to its handler class, bypassing the module lookup."""
        self.serviceNames = [services] if isinstance(services, str) else list(services)
        self.requestedPort = port
        self.host = host
        self.handlers = dict(handlers or {})
        self.maxThreads = maxThreads
        self._security = (certFile, keyFile, caPath)
        self.port = 0
        self.entries: list[ServiceEntry] = []
        self._sockets: list[socket.socket] = []
        self._sslContext: ssl.SSLContext | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopEvent: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stopRequested = False

    # Set-up

    def _urlHost(self) -> str:
        return socket.getfqdn() if self.host in ("", "0.0.0.0", "::") else self.host

    def urlFor(self, serviceName: str) -> str:
        """The URL ``serviceName`` answers at on this server."""
        return f"https://{self._urlHost()}:{self.port}/{serviceName}"

    def initialize(self) -> dict:
        """Bind the port, set up TLS and load every service; S_OK(port) or S_ERROR saying what is wrong."""
        if not self.serviceNames:
            return S_ERROR(DErrno.EVALUE, "no service to run")
        for name in self.serviceNames:
            split = splitServiceName(name)
            if not split["OK"]:
                return split
        port = self.requestedPort
        if port is None:
            result = configuredPort(self.serviceNames[0])
            if not result["OK"]:
                return result
            port = result["Value"]
        locations = _securityLocations(*self._security)
        if not locations["OK"]:
            return locations
        context = serverSSLContext(*locations["Value"])
        if not context["OK"]:
            return context
        self._sslContext = context["Value"]
        try:
            self._sockets = tornado.netutil.bind_sockets(port, address=self.host or None, family=socket.AF_INET)
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot listen on {self.host}:{port}: {exc}")
        self.port = self._sockets[0].getsockname()[1]
        for name in self.serviceNames:
            result = loadService(name, self.handlers.get(name), url=self.urlFor(name), port=self.port)
            if not result["OK"]:
                self._closeSockets()
                return result
            self.entries.append(result["Value"])
        threads = self.maxThreads or max(
            gConfig.getValue(f"{entry.sectionPath}/MaxThreads", DEFAULT_MAX_THREADS) for entry in self.entries
        )
        self._executor = ThreadPoolExecutor(max_workers=max(1, int(threads)), thread_name_prefix="rpc")
        for entry in self.entries:
            _log.always("Service ready", f"{entry.name} at {self.urlFor(entry.name)}")
        return S_OK(self.port)

    def _closeSockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def _application(self) -> tornado.web.Application:
        routes = [
            (rf"/{re.escape(entry.name)}/?", RPCWebHandler, {"entry": entry, "executor": self._executor})
            for entry in self.entries
        ]
        return tornado.web.Application(
            routes,
            default_handler_class=UnknownPathHandler,
            default_handler_args={"services": [entry.name for entry in self.entries]},
            log_function=_logRequest,
        )

    # Running

    async def _serve(self, ready: threading.Event | None, signals: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopEvent = asyncio.Event()
        if signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._stopEvent.set)
        maxBody = hardBodyLimit(max(entry.maxRequestSize for entry in self.entries))
        server = tornado.httpserver.HTTPServer(
            self._application(),
            ssl_options=self._sslContext,
            max_body_size=maxBody,
            idle_connection_timeout=IDLE_CONNECTION_TIMEOUT,
        )
        server.add_sockets(self._sockets)
        if ready is not None:
            ready.set()
        if self._stopRequested:
            self._stopEvent.set()
        await self._stopEvent.wait()
        _log.always("Stopping", ", ".join(self.serviceNames))
        server.stop()
        try:
            await asyncio.wait_for(server.close_all_connections(), timeout=5)
        except TimeoutError:
            _log.warn("Some connections did not close in time")
        self._executor.shutdown(wait=False, cancel_futures=True)

    def startTornado(self) -> dict:
        """Serve in this (main) thread until SIGTERM/SIGINT or ``stop()``; S_OK() after a clean stop."""
        if not self.entries:
            result = self.initialize()
            if not result["OK"]:
                return result
        asyncio.run(self._serve(None, signals=threading.current_thread() is threading.main_thread()))
        return S_OK()

    def startInThread(self, timeout: float = 30) -> dict:
        """Serve from a daemon thread; S_OK(port) once the server accepts connections."""
        if not self.entries:
            result = self.initialize()
            if not result["OK"]:
                return result
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(ready, signals=False)), name="TornadoServer", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            return S_ERROR(DErrno.ETIMEDOUT, "the server thread did not start in time")
        return S_OK(self.port)

    def stop(self, timeout: float = 10) -> None:
        """Stop serving (from any thread); waits for a server thread started by ``startInThread``."""
        self._stopRequested = True
        if self._loop is not None and self._stopEvent is not None:
            self._loop.call_soon_threadsafe(self._stopEvent.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def _logRequest(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    request = handler.request
    text = f"{status} {request.method} {request.path} from {request.remote_ip} {1000 * request.request_time():.1f} ms"
    if status >= 500:
        _log.error("Request failed", text)
    elif status >= 400:
        _log.warn("Request refused", text)
    else:
        _log.debug("Request", text)

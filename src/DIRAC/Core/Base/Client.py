"""``Client``: base class of DIRAC service clients.

A client for a service sets its server and calls through an RPC object::

    class FileCatalogClient(Client):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.setServer("DataManagement/FileCatalog")

        def getReplicas(self, lfns):
            return self._getRPC().getReplicas(lfns)

Methods without a wrapper are still callable: ``client.anyMethod(*args)`` is
forwarded to the service (as DIRAC's ``executeRPC``). The keyword arguments given
to the constructor (``timeout``, ``useCertificates``, ``delegatedDN``,
``delegatedGroup``, ``proxyLocation``, ``url``) are passed to every RPC client.
"""

from __future__ import annotations

import functools
from typing import Any

from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR

_LOCAL_ATTRIBUTES = {"serverURL", "timeout", "call"}


class Client:
    """Base class of service clients; see the module documentation."""

    def __init__(self, **kwargs: Any) -> None:
        self.__kwargs = dict(kwargs)
        self.serverURL = self.__kwargs.pop("url", None)
        self.timeout = self.__kwargs.pop("timeout", None)

    def setServer(self, url: str) -> None:
        """The service this client talks to: ``System/Service`` or a URL (a ``url=`` keyword wins)."""
        if not self.serverURL:
            self.serverURL = url

    def getServer(self) -> str | None:
        """The service this client talks to."""
        return self.serverURL

    def setTimeout(self, timeout: float) -> None:
        """Read timeout in seconds of the calls."""
        self.timeout = timeout

    def _getRPC(self, rpc: RPCClient | None = None, url: str = "", timeout: float | None = None) -> RPCClient:
        """An RPCClient for ``url`` (default: the server set) with this client's options."""
        if rpc is not None:
            return rpc
        target = url or self.serverURL or ""
        options = dict(self.__kwargs)
        if timeout or self.timeout:
            options["timeout"] = timeout or self.timeout
        return RPCClient(target, **options)

    def executeRPC(self, *parms: Any, **kws: Any) -> dict:
        """Call ``kws['call']`` (or ``self.call``) with ``parms``; DIRAC's generic entry point."""
        method = kws.pop("call", None) or self.__dict__.get("call")
        if not method:
            return S_ERROR(DErrno.EVALUE, "executeRPC needs the method name (call=...)")
        if not (kws.get("url") or self.serverURL) and kws.get("rpc") is None:
            return S_ERROR(DErrno.ECONF, f"{type(self).__name__} has no server: call setServer first")
        rpc = self._getRPC(rpc=kws.get("rpc"), url=kws.get("url", ""), timeout=kws.get("timeout"))
        return rpc.executeRPC(method, *parms)

    def __getattr__(self, name: str):
        # Only unknown public names become remote calls; attributes a subclass forgot
        # to initialise must still raise AttributeError.
        if name.startswith("_") or name in _LOCAL_ATTRIBUTES:
            raise AttributeError(name)
        return functools.partial(self.executeRPC, call=name)

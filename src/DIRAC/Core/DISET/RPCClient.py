"""``RPCClient``: DIRAC's generic client of one service.

``RPCClient("DataManagement/FileCatalog").getReplicas(lfns)`` calls the service's
``export_getReplicas``; every attribute is a remote method returning S_OK/S_ERROR
(it never raises). The target is a ``System/Service`` name or a full https URL.
Keyword options: ``timeout``, ``useCertificates``, ``delegatedDN``,
``delegatedGroup``, ``proxyLocation``. The transport is ``TornadoClient``.
"""

from __future__ import annotations

import functools
from typing import Any

from DIRAC.Core.Tornado.Client.TornadoClient import TornadoClient


class RPCClient:
    """A service proxy: ``client.method(*args)`` is a remote call."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._transport = TornadoClient(url, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._transport.executeRPC, name)

    def executeRPC(self, method: str, *args: Any) -> dict:
        """Call ``method(*args)`` by name."""
        return self._transport.executeRPC(method, *args)

    @property
    def serviceName(self) -> str:
        """The ``System/Service`` name or URL this client calls."""
        return self._transport.serviceName

    def __repr__(self) -> str:
        return f"<RPCClient {self._transport.serviceName}>"

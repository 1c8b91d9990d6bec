"""``SystemAdministratorClient``: the client of one host's ``Framework/SystemAdministrator``.

::

    client = SystemAdministratorClient("diracserver.institute.tld")       # port from the configuration
    client.installComponent("service", "DataManagement", "S3Gateway", {"Port": "9198"})
    client.getComponentStatus()                                           # S_OK({"System_Component": {...}})

Unlike most clients it addresses a host, not a service name: every host runs its own
SystemAdministrator. The port is ``/Systems/Framework/Services/SystemAdministrator/Port``
(default 9162) unless given. Keyword options (``proxyLocation``, ``useCertificates``,
``timeout``...) go to the RPC client; the default timeout is long because installing waits
until the service is ready.
"""

from __future__ import annotations

from typing import Any

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Base.Client import Client

DEFAULT_PORT = 9162
DEFAULT_TIMEOUT = 600
PORT_OPTION = "/Systems/Framework/Services/SystemAdministrator/Port"


class SystemAdministratorClient(Client):
    """Calls the SystemAdministrator of ``host``; every method returns S_OK/S_ERROR."""

    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        super().__init__(**kwargs)
        if not port:
            port = gConfig.getValue(PORT_OPTION, DEFAULT_PORT)
        self.host = host
        self.port = int(port)
        self.setServer(f"https://{host}:{self.port}/Framework/SystemAdministrator")

    def installComponent(self, componentType: str, system: str, component: str, options: dict | None = None) -> dict:
        """Install (or re-install) a component and wait until it is ready."""
        return self._getRPC().installComponent(componentType, system, component, options or {})

    def uninstallComponent(self, componentType: str, system: str, component: str) -> dict:
        """Stop supervising a component and remove it from the configuration."""
        return self._getRPC().uninstallComponent(componentType, system, component)

    def startComponent(self, system: str, component: str) -> dict:
        """Start (``*`` allowed)."""
        return self._getRPC().startComponent(system, component)

    def stopComponent(self, system: str, component: str) -> dict:
        """Stop (``*`` allowed)."""
        return self._getRPC().stopComponent(system, component)

    def restartComponent(self, system: str, component: str) -> dict:
        """Restart (``*`` allowed)."""
        return self._getRPC().restartComponent(system, component)

    def getComponentStatus(self, system: str = "*", component: str = "*") -> dict:
        """S_OK({"<System>_<Component>": {RunitStatus, PID, Timeup, ...}})."""
        return self._getRPC().getComponentStatus(system, component)

    def getInstalledComponents(self) -> dict:
        """S_OK({"Services": {System: [Component, ...]}})."""
        return self._getRPC().getInstalledComponents()

    def getLogTail(self, system: str, component: str, length: int = 100) -> dict:
        """S_OK({"<System>_<Component>": last lines of its log})."""
        return self._getRPC().getLogTail(system, component, length)

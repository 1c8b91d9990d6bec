"""Where an instance lives and how its components are reached: folders, host name, ports.

An instance folder (``/LocalSite/InstancePath``) holds::

    etc/dirac.cfg                     the host's local configuration (every component reads it)
    etc/<System>_<Component>.cfg      optional extra local options of one component
    etc/CentralConfiguration.cfg      the central configuration (on the configuration server's host)
    etc/client.cfg                    for users' clients: configuration server URL and CA folder
    work/                             working folder of the components (databases, caches)
    runit/<System>/<Component>/       run, log/run, log/current (the component's log), supervise/
    startup/<System>_<Component>      links to runit folders: what runsvdir supervises
    logs/                             runsvdir's own output, logs of uninstalled components
    runsvdir.pid                      PID of the runsvdir process supervising startup/

Local options read by the installer: ``/LocalSite/InstancePath``, ``/DIRAC/Hostname`` (the
host name in service URLs, default the FQDN), ``/LocalSite/ListenAddress`` (default
0.0.0.0), ``/LocalSite/PortBase`` (optional: new services take free ports from there),
``/DIRAC/Security/CALocation``.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

DEFAULT_LISTEN = "0.0.0.0"
CENTRAL_FILE_NAME = "CentralConfiguration.cfg"


@dataclass
class InstanceSettings:
    """The layout and network identity of one instance."""

    instancePath: str
    host: str = field(default_factory=socket.getfqdn)
    listenAddress: str = DEFAULT_LISTEN
    portBase: int | None = None
    caLocation: str = ""
    python: str = sys.executable

    def __post_init__(self) -> None:
        self.instancePath = os.path.abspath(self.instancePath)

    # folders and files
    @property
    def etcDir(self) -> str:
        return os.path.join(self.instancePath, "etc")

    @property
    def workDir(self) -> str:
        return os.path.join(self.instancePath, "work")

    @property
    def runitDir(self) -> str:
        return os.path.join(self.instancePath, "runit")

    @property
    def startupDir(self) -> str:
        return os.path.join(self.instancePath, "startup")

    @property
    def logsDir(self) -> str:
        return os.path.join(self.instancePath, "logs")

    @property
    def localCfgPath(self) -> str:
        return os.path.join(self.etcDir, "dirac.cfg")

    @property
    def clientCfgPath(self) -> str:
        """``etc/client.cfg``: a configuration for users' clients of this instance (no secrets)."""
        return os.path.join(self.etcDir, "client.cfg")

    @property
    def centralCfgPath(self) -> str:
        return os.path.join(self.etcDir, CENTRAL_FILE_NAME)

    @property
    def pidFile(self) -> str:
        return os.path.join(self.instancePath, "runsvdir.pid")

    @property
    def runsvdirLog(self) -> str:
        return os.path.join(self.logsDir, "runsvdir.log")

    def folders(self) -> list[str]:
        """Every folder of the layout."""
        return [self.etcDir, self.workDir, self.runitDir, self.startupDir, self.logsDir]

    def componentDir(self, system: str, component: str) -> str:
        """``runit/<System>/<Component>``."""
        return os.path.join(self.runitDir, system, component)

    def startupLink(self, system: str, component: str) -> str:
        """``startup/<System>_<Component>``."""
        return os.path.join(self.startupDir, f"{system}_{component}")

    def componentCfgPath(self, system: str, component: str) -> str:
        """``etc/<System>_<Component>.cfg``: extra local options of one component (optional)."""
        return os.path.join(self.etcDir, f"{system}_{component}.cfg")

    def logFile(self, system: str, component: str) -> str:
        """The current log of a component (written by svlogd)."""
        return os.path.join(self.componentDir(system, component), "log", "current")

    def serviceURL(self, system: str, component: str, port: int) -> str:
        """``https://<host>:<port>/<System>/<Component>``."""
        return f"https://{self.host}:{port}/{system}/{component}"

    @classmethod
    def fromConfig(cls) -> dict:
        """S_OK(settings) from this process's local configuration; S_ERROR when InstancePath is unset."""
        from DIRAC.ConfigurationSystem.Client.Config import gConfig

        path = gConfig.getValue("/LocalSite/InstancePath", "")
        if not path:
            return S_ERROR(DErrno.ECONF, "/LocalSite/InstancePath is not set: this host has no instance folder")
        portBase = gConfig.getValue("/LocalSite/PortBase", 0)
        try:
            portBase = int(portBase) or None
        except (TypeError, ValueError):
            return S_ERROR(DErrno.ECONF, f"/LocalSite/PortBase = {portBase!r} is not a port number")
        return S_OK(
            cls(
                instancePath=path,
                host=gConfig.getValue("/DIRAC/Hostname", "") or socket.getfqdn(),
                listenAddress=gConfig.getValue("/LocalSite/ListenAddress", "") or DEFAULT_LISTEN,
                portBase=portBase,
                caLocation=gConfig.getValue("/DIRAC/Security/CALocation", ""),
            )
        )

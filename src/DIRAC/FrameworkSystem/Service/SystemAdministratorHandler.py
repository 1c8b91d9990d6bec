"""``Framework/SystemAdministrator``: install and control the services of this host remotely.

Every method needs the property ``ServiceAdministrator`` (``Authorization/Default`` in the
Framework ``ConfigTemplate.cfg``, and ``auth_<method>`` here when the configuration says
nothing); the site bootstrap gives it to the administrators' group and to the host itself.
The work is done by ``ComponentInstaller`` on this host's instance (``/LocalSite/InstancePath``).

The configuration server and this service hold the instance up: they cannot be
uninstalled or stopped from here (``dirac-setup-site --stop`` on the host does that).
Restarting this service answers first and restarts one second later.
"""

from __future__ import annotations

import threading

from DIRAC.Core.DISET.RequestHandler import RequestHandler, getServiceOption
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client import Runit
from DIRAC.FrameworkSystem.Client.ComponentInstaller import DEFAULT_WAIT, ComponentInstaller
from DIRAC.FrameworkSystem.Client.InstanceSettings import InstanceSettings
from DIRAC.FrameworkSystem.Client.Logger import gLogger

ADMIN = ["ServiceAdministrator"]
SELF = ("Framework", "SystemAdministrator")
PROTECTED = {"Framework/SystemAdministrator", "Configuration/Server"}
SELF_RESTART_DELAY = 1.0
_log = gLogger.getSubLogger("SystemAdministrator")


def _refreshConfiguration() -> None:
    """After a commit: let this process see the new central configuration now."""
    from DIRAC.ConfigurationSystem.Client.CSServerLoader import installCentralLoader

    result = installCentralLoader().refreshNow()
    if not result["OK"]:
        _log.warn("Configuration refresh failed", result["Message"])


class SystemAdministratorHandler(RequestHandler):
    """Remote control of this host's components; see the module documentation."""

    installer: ComponentInstaller | None = None

    auth_installComponent = ADMIN
    auth_uninstallComponent = ADMIN
    auth_startComponent = ADMIN
    auth_stopComponent = ADMIN
    auth_restartComponent = ADMIN
    auth_getComponentStatus = ADMIN
    auth_getInstalledComponents = ADMIN
    auth_getLogTail = ADMIN

    @classmethod
    def initializeHandler(cls, serviceInfo: dict) -> dict:
        """Find this host's instance and runit; an instance-less host cannot run this service."""
        settings = InstanceSettings.fromConfig()
        if not settings["OK"]:
            return settings
        tools = Runit.checkTools()
        if not tools["OK"]:
            return tools
        timeout = getServiceOption(serviceInfo, "StartTimeout", DEFAULT_WAIT)
        cls.installer = ComponentInstaller(
            settings["Value"], onCommit=_refreshConfiguration, waitTimeout=float(timeout or DEFAULT_WAIT)
        )
        _log.always("Managing instance", settings["Value"].instancePath)
        return S_OK()

    def _audit(self, action: str, target: str) -> None:
        credentials = self.getRemoteCredentials()
        _log.always(action, f"{target} by {credentials.get('username')}@{credentials.get('group')}")

    @staticmethod
    def _refuseProtected(system: str, component: str, action: str) -> dict:
        if f"{system}/{component}" in PROTECTED:
            return S_ERROR(
                DErrno.EPERM,
                f"{system}/{component} keeps the instance up and cannot be {action} remotely; "
                "use dirac-setup-site on the host",
            )
        return S_OK()

    types_installComponent = [str, str, str]

    def export_installComponent(
        self, componentType: str, system: str, component: str, options: dict | None = None
    ) -> dict:
        """Install ``system``/``component`` with ``options`` ({name: value}); S_OK(installation info)."""
        if options is not None and not isinstance(options, dict):
            return S_ERROR(DErrno.ETYPE, "installComponent: options must be a dictionary {name: value}")
        refused = self._refuseProtected(system, component, "re-installed")
        if not refused["OK"]:
            return refused
        self._audit("Install", f"{componentType} {system}/{component}")
        return self.installer.installComponent(componentType, system, component, options or {})

    types_uninstallComponent = [str, str, str]

    def export_uninstallComponent(self, componentType: str, system: str, component: str) -> dict:
        """Stop supervising the component and remove it from the configuration."""
        refused = self._refuseProtected(system, component, "uninstalled")
        if not refused["OK"]:
            return refused
        self._audit("Uninstall", f"{componentType} {system}/{component}")
        return self.installer.uninstallComponent(componentType, system, component)

    types_startComponent = [str, str]

    def export_startComponent(self, system: str, component: str) -> dict:
        """Start (``*`` allowed) and wait until ready; S_OK({"<System>_<Component>": status})."""
        self._audit("Start", f"{system}/{component}")
        return self.installer.startComponent(system, component)

    types_stopComponent = [str, str]

    def export_stopComponent(self, system: str, component: str) -> dict:
        """Stop (``*`` allowed; the protected components are skipped by ``*``)."""
        if "*" not in (system, component):
            refused = self._refuseProtected(system, component, "stopped")
            if not refused["OK"]:
                return refused
        self._audit("Stop", f"{system}/{component}")
        return self.installer.stopComponent(system, component, skip=PROTECTED)

    types_restartComponent = [str, str]

    def export_restartComponent(self, system: str, component: str) -> dict:
        """Restart (``*`` allowed, this service excepted) and wait until ready."""
        self._audit("Restart", f"{system}/{component}")
        if (system, component) == SELF:
            folder = self.installer.getSettings()["Value"].componentDir(*SELF)
            timer = threading.Timer(SELF_RESTART_DELAY, Runit.runSv, args=("restart", [folder]))
            timer.daemon = True
            timer.start()
            return S_OK({"Framework_SystemAdministrator": {"RunitStatus": "Restarting", "PID": 0, "Timeup": 0}})
        return self.installer.restartComponent(system, component, skip={"/".join(SELF)})

    types_getComponentStatus: list = []

    def export_getComponentStatus(self, system: str = "*", component: str = "*") -> dict:
        """S_OK({"<System>_<Component>": {RunitStatus, PID, Timeup, ...}}) of the matching components."""
        return self.installer.getComponentStatus(system, component)

    types_getInstalledComponents: list = []

    def export_getInstalledComponents(self) -> dict:
        """S_OK({"Services": {System: [Component, ...]}})."""
        return self.installer.getInstalledComponents()

    types_getLogTail = [str, str]

    def export_getLogTail(self, system: str, component: str, length: int = 100) -> dict:
        """S_OK({"<System>_<Component>": the last ``length`` lines of its log})."""
        return self.installer.getLogTail(system, component, length)

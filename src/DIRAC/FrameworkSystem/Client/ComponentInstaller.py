"""``ComponentInstaller``: install DIRAC services of one instance, configured centrally, supervised by runit.

Installing ``<System>/<Service>`` (``installComponent("service", System, Service, options)``):

1. checks that the service exists: a section ``Services/<Service>`` in the system's
   ``ConfigTemplate.cfg`` and a handler module ``DIRAC.<System>System.Service.<Service>Handler``
   (``Module = <Other>`` installs another service's handler under this name). Nothing is
   changed when it does not;
2. writes ``/Systems/<System>/Services/<Service>`` into the central configuration: the
   template's defaults, under what is already there, under the options given; its ``Port``
   (given, already configured, the next free one from ``/LocalSite/PortBase``, or the
   template's) and this host's URL in ``/Systems/<System>/URLs/<Service>`` (other hosts' URLs
   are kept: several copies of a service share the list). One commit through the
   configuration server (``CSAPI``), redone on a fresh copy when somebody committed meanwhile;
3. writes ``runit/<System>/<Service>/run`` (``exec dirac-service`` with the instance's local
   configuration) and ``log/run`` (``svlogd``), links the folder into ``startup/``;
4. waits (bounded) until ``sv status`` says it runs and its log says "Service ready"; otherwise
   it stops it and answers an error with the end of its log.

Installing again is harmless: a running component whose configuration and run script did not
change is left alone, otherwise it is restarted. ``uninstallComponent`` takes it out of
supervision, keeps its log in ``logs/`` and removes it from the configuration.
``start``/``stop``/``restartComponent`` accept ``*`` for the system and/or the component.

Secrets (options named like keys, passwords, tokens) are refused: they belong in the local
``dirac.cfg`` of the hosts that need them, never in the central configuration.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from diraccfg import CFG

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client import Runit
from DIRAC.FrameworkSystem.Client.ComponentTemplates import (
    NAME,
    checkName,
    checkService,
    checkType,
    optionsToCFG,
    portIsFree,
    portOf,
    urlList,
    walkOptions,
)
from DIRAC.FrameworkSystem.Client.InstanceSettings import InstanceSettings
from DIRAC.FrameworkSystem.Client.Logger import gLogger

READY_MARK = "Service ready"
DEFAULT_WAIT = 60.0
STOP_WAIT = 15
MAX_LOG_LINES = 10000
MAX_RESTARTS_SEEN = 4
DOWN_GRACE = 2.0
LOCK_WAIT = 120.0
PORT_SEARCH = 1000
_log = gLogger.getSubLogger("ComponentInstaller")


class ComponentInstaller:
    """Installs and controls the services of one instance; see the module documentation."""

    def __init__(
        self,
        settings: InstanceSettings | None = None,
        csAPIFactory: Callable[[], Any] | None = None,
        onCommit: Callable[[], Any] | None = None,
        waitTimeout: float = DEFAULT_WAIT,
    ) -> None:
        """``settings`` default to this host's local configuration; ``csAPIFactory`` makes the
        configuration editor (default ``CSAPI``: through the configuration server); ``onCommit``
        runs after each committed change (e.g. refresh this process's configuration)."""
        self._settings = settings
        self._csAPIFactory = csAPIFactory
        self._onCommit = onCommit
        self.waitTimeout = waitTimeout
        self._lock = threading.Lock()

    # settings and locks

    def getSettings(self) -> dict:
        """S_OK(InstanceSettings) of the instance this installer works on."""
        if self._settings is None:
            result = InstanceSettings.fromConfig()
            if not result["OK"]:
                return result
            self._settings = result["Value"]
        return S_OK(self._settings)

    @contextlib.contextmanager
    def _exclusive(self, settings: InstanceSettings, timeout: float = LOCK_WAIT) -> Iterator[dict]:
        """One installer action at a time, across threads and processes (a lock file in etc/).

        Yields S_OK() holding the lock, or S_ERROR when it could not be had in ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            yield S_ERROR(DErrno.ETIMEDOUT, "another installation is running on this instance; try again")
            return
        try:
            os.makedirs(settings.etcDir, exist_ok=True)
            lockFile = open(os.path.join(settings.etcDir, ".installer.lock"), "a")
        except OSError as exc:
            self._lock.release()
            yield S_ERROR(DErrno.EIO, f"cannot lock the instance {settings.instancePath}: {exc}")
            return
        try:
            while True:
                try:
                    fcntl.flock(lockFile, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        yield S_ERROR(DErrno.ETIMEDOUT, "another installation is running on this instance; try again")
                        return
                    time.sleep(0.1)
            try:
                yield S_OK()
            finally:
                fcntl.flock(lockFile, fcntl.LOCK_UN)
        finally:
            lockFile.close()
            self._lock.release()

    def _whileLocked(self, action: Callable[[InstanceSettings], dict]) -> dict:
        """``action(settings)`` holding the instance lock; the settings or lock error otherwise."""
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        with self._exclusive(settings["Value"]) as locked:
            if not locked["OK"]:
                return locked
            return action(settings["Value"])

    def _newCSAPI(self) -> Any:
        if self._csAPIFactory is not None:
            return self._csAPIFactory()
        from DIRAC.ConfigurationSystem.Client.CSAPI import CSAPI

        return CSAPI()

    def _editCS(self, edit: Callable[[Any, CFG], dict], attempts: int = 3) -> dict:
        """Download, ``edit(csAPI, current CFG)``, commit; redone when somebody committed meanwhile."""
        for _attempt in range(attempts):
            csAPI = self._newCSAPI()
            current = csAPI.getCurrentCFG()
            if not current["OK"]:
                return S_ERROR(
                    current.get("Errno", DErrno.ECONF), f"cannot read the central configuration: {current['Message']}"
                )
            result = edit(csAPI, current["Value"])
            if not result["OK"]:
                return result
            committed = csAPI.commit()
            if committed["OK"]:
                if self._onCommit is not None:
                    try:
                        self._onCommit()
                    except Exception:  # noqa: BLE001 - a refresh failure must not undo a done commit
                        _log.exception("Configuration refresh after a commit failed")
                return result
            if "stale" not in committed["Message"]:
                return S_ERROR(
                    committed.get("Errno", DErrno.ECONF),
                    f"cannot commit to the central configuration: {committed['Message']}",
                )
        return S_ERROR(DErrno.ECONF, "the central configuration kept changing under us; try again")

    # configuration

    def _hostPorts(self, settings: InstanceSettings, current: CFG, exclude: tuple[str, str]) -> dict[int, str]:
        """{port: "System/Service"} of the services configured on this host, but ``exclude``."""
        used: dict[int, str] = {}
        systems = current.getAsCFG("Systems")
        for system in systems.listSections():
            urls = systems.getAsCFG(f"{system}/URLs")
            for service in urls.listOptions():
                if (system, service) == exclude:
                    continue
                for url in urlList(urls[service]):
                    host, port = portOf(url)
                    if host == settings.host and port:
                        used[port] = f"{system}/{service}"
        return used

    def _choosePort(
        self,
        settings: InstanceSettings,
        current: CFG,
        system: str,
        service: str,
        section: CFG,
        explicit: str,
        installedHere: bool,
    ) -> dict:
        used = self._hostPorts(settings, current, (system, service))
        existing = current.getOption(f"Systems/{system}/Services/{service}/Port", "")
        if explicit or existing or not settings.portBase:
            raw = explicit or existing or section.getOption("Port", "")
            try:
                port = int(str(raw).strip())
            except ValueError:
                return S_ERROR(DErrno.ECONF, f"{system}/{service}: Port = {raw!r} is not a port number")
            if not 0 < port < 65536:
                return S_ERROR(DErrno.ECONF, f"{system}/{service}: Port = {port} is not a valid port")
            if port in used:
                return S_ERROR(DErrno.ECONF, f"port {port} is already used by {used[port]} on {settings.host}")
            if not installedHere and not portIsFree(settings.listenAddress, port):
                return S_ERROR(DErrno.EIO, f"port {port} is busy on {settings.host}: give another one with -p Port=N")
            return S_OK(port)
        for port in range(settings.portBase, min(65536, settings.portBase + PORT_SEARCH)):
            if port not in used and portIsFree(settings.listenAddress, port):
                return S_OK(port)
        return S_ERROR(DErrno.EIO, f"no free port in {settings.portBase}..{settings.portBase + PORT_SEARCH - 1}")

    def addComponentToCS(
        self, system: str, service: str, options: dict | None = None, installedHere: bool = False
    ) -> dict:
        """Write the service's section and this host's URL into the central configuration.

        S_OK({"Port", "URL", "Changed"}); nothing is committed when nothing changes.
        """
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        settings = settings["Value"]
        options = dict(options or {})
        module = str(options.get("Module", "") or "")
        template = checkService(system, service, module)
        if not template["OK"]:
            return template
        given = optionsToCFG(options)
        if not given["OK"]:
            return given

        def edit(csAPI: Any, current: CFG) -> dict:
            sectionPath = f"Systems/{system}/Services/{service}"
            existing = current.getAsCFG(sectionPath)
            section = template["Value"].mergeWith(existing).mergeWith(given["Value"])
            port = self._choosePort(
                settings, current, system, service, section, given["Value"].getOption("Port", ""), installedHere
            )
            if not port["OK"]:
                return port
            port = port["Value"]
            section.setOption("Port", str(port))
            url = settings.serviceURL(system, service, port)
            urlsPath = f"Systems/{system}/URLs/{service}"
            before = urlList(current.getOption(urlsPath, ""))
            urls = [item for item in before if portOf(item)[0] != settings.host] + [url]
            changed = urls != before or section.getAsDict() != existing.getAsDict()
            if changed:
                for path, value in walkOptions(section):
                    result = csAPI.setOption(f"/{sectionPath}/{path}", value)
                    if not result["OK"]:
                        return result
                result = csAPI.setOption(f"/{urlsPath}", ", ".join(urls))
                if not result["OK"]:
                    return result
            return S_OK({"Port": port, "URL": url, "Changed": changed})

        return self._editCS(edit)

    def removeComponentFromCS(self, system: str, service: str) -> dict:
        """Remove this host's URL; with no URL left, the URLs entry and the service's section too.

        S_OK({"Removed": [paths]}).
        """
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        host = settings["Value"].host

        def edit(csAPI: Any, current: CFG) -> dict:
            urlsPath = f"/Systems/{system}/URLs/{service}"
            sectionPath = f"/Systems/{system}/Services/{service}"
            removed = []
            before = urlList(current.getOption(urlsPath.lstrip("/"), ""))
            urls = [url for url in before if portOf(url)[0] != host]
            if urls != before:
                result = csAPI.setOption(urlsPath, ", ".join(urls)) if urls else csAPI.delOption(urlsPath)
                if not result["OK"]:
                    return result
                removed.append(f"{urlsPath} ({', '.join(u for u in before if u not in urls)})")
            if not urls and current.isSection(sectionPath.lstrip("/")):
                result = csAPI.delSection(sectionPath)
                if not result["OK"]:
                    return result
                removed.append(sectionPath)
            if not removed:
                # Nothing to commit; CSAPI.commit() is a no-op without changes.
                return S_OK({"Removed": []})
            return S_OK({"Removed": removed})

        return self._editCS(edit)

    # runit

    def _runScript(self, settings: InstanceSettings, system: str, service: str) -> str:
        quote = shlex.quote
        extra = settings.componentCfgPath(system, service)
        command = [settings.python, "-m", "DIRAC.Core.scripts.dirac_service", f"{system}/{service}"]
        command += ["--host", settings.listenAddress]
        lines = [
            "#!/bin/sh",
            f"# {system}/{service}, supervised by runit; written by DIRAC's ComponentInstaller.",
            f"# Local configuration: {settings.localCfgPath}, plus {extra} when it exists.",
            f"cd {quote(settings.workDir)} || exit 1",
            f"DIRACSYSCONFIG={quote(settings.localCfgPath)}",
            f'if [ -f {quote(extra)} ]; then DIRACSYSCONFIG="$DIRACSYSCONFIG",{quote(extra)}; fi',
            "export DIRACSYSCONFIG",
            f"export DIRAC={quote(settings.instancePath)}",
            "unset X509_USER_PROXY X509_USER_CERT X509_USER_KEY",
        ]
        if settings.caLocation:
            lines.append(f"export X509_CERT_DIR={quote(settings.caLocation)}")
        lines += ["exec 2>&1", "exec " + " ".join(quote(part) for part in command), ""]
        return "\n".join(lines)

    @staticmethod
    def _logScript() -> str:
        svlogd = Runit.findTool("svlogd") or "svlogd"
        return f"#!/bin/sh\nexec {shlex.quote(svlogd)} .\n"

    @staticmethod
    def _writeIfChanged(path: str, text: str, mode: int = 0o755) -> bool:
        """Write ``text`` atomically when it differs; True when the file changed."""
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() == text:
                    return False
        except OSError:
            pass
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return True

    def setupRunit(self, system: str, service: str, holdDown: bool = False) -> dict:
        """Write ``runit/<System>/<Service>/run`` and ``log/run``, link it into ``startup/``.

        ``holdDown`` writes a ``down`` file first: runit will supervise it but not start it.
        S_OK(True when a script changed).
        """
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        settings = settings["Value"]
        tools = Runit.checkTools()
        if not tools["OK"]:
            return tools
        folder = settings.componentDir(system, service)
        try:
            for path in (settings.workDir, settings.startupDir, os.path.join(folder, "log")):
                os.makedirs(path, exist_ok=True)
            if holdDown:
                with open(os.path.join(folder, "down"), "w"):
                    pass
            changed = self._writeIfChanged(os.path.join(folder, "run"), self._runScript(settings, system, service))
            changed |= self._writeIfChanged(os.path.join(folder, "log", "run"), self._logScript())
            self._writeIfChanged(os.path.join(folder, "log", "config"), "s10000000\nn10\n", 0o644)
            link = settings.startupLink(system, service)
            if os.path.islink(link) and os.readlink(link) != folder:
                os.unlink(link)
            if not os.path.islink(link):
                os.symlink(folder, link)
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot set up runit for {system}/{service} in {folder}: {exc}")
        return S_OK(changed)

    @staticmethod
    def _logSize(settings: InstanceSettings, system: str, service: str) -> int:
        try:
            return os.path.getsize(settings.logFile(system, service))
        except OSError:
            return 0

    def logSize(self, system: str, service: str) -> int:
        """Bytes in the component's current log (an offset for ``waitForComponent``)."""
        settings = self.getSettings()
        return self._logSize(settings["Value"], system, service) if settings["OK"] else 0

    def _logSince(self, settings: InstanceSettings, system: str, service: str, offset: int) -> str:
        path = settings.logFile(system, service)
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(offset if offset <= size else 0)
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _failure(self, settings: InstanceSettings, system: str, service: str, why: str) -> dict:
        tail = Runit.tailFile(settings.logFile(system, service), 20)
        where = settings.logFile(system, service)
        text = (
            f"{system}/{service} {why}; last lines of {where}:\n{tail}"
            if tail
            else f"{system}/{service} {why} (no log in {where})"
        )
        return S_ERROR(DErrno.EIO, text)

    def waitForComponent(
        self, system: str, service: str, logOffset: int, oldPid: int = 0, timeout: float | None = None
    ) -> dict:
        """Wait until runit runs the component (a PID other than ``oldPid``) and its log, after
        ``logOffset``, says "Service ready". S_OK(status) or S_ERROR with the end of the log."""
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        settings = settings["Value"]
        folder = settings.componentDir(system, service)
        deadline = time.monotonic() + (timeout or self.waitTimeout)
        settled = time.monotonic() + DOWN_GRACE  # runsv reads sv's command asynchronously
        pids: set[int] = set()
        status: dict = {}
        while time.monotonic() < deadline:
            result = Runit.serviceStatus(folder)
            status = result["Value"] if result["OK"] else {"RunitStatus": "Unknown", "PID": 0}
            pid = status.get("PID", 0)
            if status["RunitStatus"] == "Run" and pid and pid != oldPid:
                pids.add(pid)
                if READY_MARK in self._logSince(settings, system, service, logOffset):
                    return S_OK(status)
            elif status["RunitStatus"] == "Down" and not status.get("WantUp") and time.monotonic() > settled:
                return self._failure(settings, system, service, "is down (stopped)")
            if len(pids) >= MAX_RESTARTS_SEEN:
                return self._failure(settings, system, service, f"keeps exiting (restarted {len(pids)} times)")
            time.sleep(0.2)
        state = status.get("RunitStatus", "Unknown")
        limit = f"within {timeout or self.waitTimeout:.0f} s"
        if state == "Unknown":
            why = f"was not picked up by runsvdir {limit} (is runsvdir running on {settings.startupDir}?)"
        else:
            why = f"did not become ready {limit} (runit status {state})"
        return self._failure(settings, system, service, why)

    # installation

    def isInstalled(self, system: str, service: str) -> bool:
        """True when the component has a runit folder in this instance."""
        settings = self.getSettings()
        return settings["OK"] and os.path.isfile(os.path.join(settings["Value"].componentDir(system, service), "run"))

    def installComponent(self, componentType: str, system: str, component: str, options: dict | None = None) -> dict:
        """Install (or re-install) a service and wait until it is ready; see the module documentation.

        S_OK({"System", "Component", "Port", "URL", "Status", "Action"}) where Action is
        ``installed``, ``restarted``, ``started`` or ``unchanged``.
        """

        def prepareAndActivate(_settings: InstanceSettings) -> dict:
            prepared = self._prepare(componentType, system, component, options)
            return prepared if not prepared["OK"] else self._activate(prepared["Value"])

        return self._whileLocked(prepareAndActivate)

    def prepareComponent(self, componentType: str, system: str, component: str, options: dict | None = None) -> dict:
        """First half of ``installComponent``: configuration and runit folder, not started yet.

        S_OK(pending dict) for ``activateComponent``. A component runit does not supervise yet
        gets a ``down`` file, so that nothing starts before it is activated (the bootstrap
        prepares the configuration server and the SystemAdministrator, then starts them in order).
        """
        return self._whileLocked(lambda _settings: self._prepare(componentType, system, component, options))

    def activateComponent(self, pending: dict) -> dict:
        """Second half of ``installComponent``: start (or restart when changed) and wait until ready."""
        return self._whileLocked(lambda _settings: self._activate(pending))

    def _prepare(self, componentType: str, system: str, component: str, options: dict | None) -> dict:
        kind = checkType(componentType)
        if not kind["OK"]:
            return kind
        options = dict(options or {})
        check = checkService(system, component, str(options.get("Module", "") or ""))
        if not check["OK"]:
            return check
        given = optionsToCFG(options)
        if not given["OK"]:
            return given
        tools = Runit.checkTools()
        if not tools["OK"]:
            return tools
        settings = self.getSettings()["Value"]
        folder = settings.componentDir(system, component)
        installedHere = self.isInstalled(system, component)
        configured = self.addComponentToCS(system, component, options, installedHere)
        if not configured["OK"]:
            return configured
        before = Runit.serviceStatus(folder) if os.path.isdir(os.path.join(folder, "supervise")) else None
        before = before["Value"] if before and before["OK"] else {"RunitStatus": "Unknown", "PID": 0}
        offset = self._logSize(settings, system, component)
        runit = self.setupRunit(system, component, holdDown=before["RunitStatus"] == "Unknown")
        if not runit["OK"]:
            return runit
        return S_OK(
            {
                "System": system,
                "Component": component,
                "Port": configured["Value"]["Port"],
                "URL": configured["Value"]["URL"],
                "Before": before,
                "LogOffset": offset,
                "Changed": bool(runit["Value"] or configured["Value"]["Changed"]),
                "New": not installedHere,
            }
        )

    def _activate(self, pending: dict) -> dict:
        settings = self.getSettings()["Value"]
        system, component = pending["System"], pending["Component"]
        folder = settings.componentDir(system, component)
        info = {key: pending[key] for key in ("System", "Component", "Port", "URL")}
        before = pending["Before"]
        running = before["RunitStatus"] == "Run"
        if running and not pending["Changed"]:
            return S_OK(dict(info, Status=before, Action="unchanged"))
        self._removeDownFile(settings, system, component)
        supervised = self._waitSupervised(folder)
        if not supervised["OK"]:
            return self._failure(settings, system, component, supervised["Message"])
        now = supervised["Value"]
        action = "installed" if pending.get("New") else "started"
        if now["RunitStatus"] == "Run" and now["PID"] == before["PID"] and running:
            Runit.runSv("restart", [folder])
            action = "restarted"
        elif now["RunitStatus"] != "Run":
            Runit.runSv("up", [folder])
        ready = self.waitForComponent(system, component, pending["LogOffset"], before["PID"] if running else 0)
        if not ready["OK"]:
            self._stopQuietly(settings, system, component)
            return S_ERROR(
                ready["Errno"],
                f"{ready['Message']}\n{system}/{component} is installed but stopped: "
                "fix the cause, then start it (or uninstall it)",
            )
        _log.always("Installed", f"{system}/{component} at {info['URL']} ({action})")
        return S_OK(dict(info, Status=ready["Value"], Action=action))

    def _waitSupervised(self, folder: str, timeout: float | None = None) -> dict:
        """Wait until a runsv supervises ``folder`` (runsvdir scans startup/ every 5 s); S_OK(status)."""
        deadline = time.monotonic() + (timeout or self.waitTimeout)
        while time.monotonic() < deadline:
            status = Runit.serviceStatus(folder)
            if status["OK"] and status["Value"]["RunitStatus"] != "Unknown":
                return status
            time.sleep(0.2)
        settings = self.getSettings()["Value"]
        return S_ERROR(DErrno.ETIMEDOUT, f"was not picked up by runsvdir (is it running on {settings.startupDir}?)")

    def uninstallComponent(self, componentType: str, system: str, component: str) -> dict:
        """Stop supervising the component, keep its log in ``logs/``, remove it from the configuration."""
        kind = checkType(componentType)
        if not kind["OK"]:
            return kind
        for label, name in (("system", system), ("component", component)):
            checked = checkName(label, name)
            if not checked["OK"]:
                return checked
        return self._whileLocked(lambda settings: self._uninstall(settings, system, component))

    def _uninstall(self, settings: InstanceSettings, system: str, component: str) -> dict:
        """``uninstallComponent`` once the names are checked and the lock is held."""
        folder = settings.componentDir(system, component)
        link = settings.startupLink(system, component)
        present = os.path.isdir(folder) or os.path.islink(link)
        stopped: list[int] = []
        if present:
            result = self._unsupervise(settings, system, component)
            if not result["OK"]:
                return result
            stopped = result["Value"]
        configuration = self.removeComponentFromCS(system, component)
        if not configuration["OK"]:
            return configuration
        removed = configuration["Value"]["Removed"]
        if not present and not removed:
            return S_ERROR(DErrno.ENOENT, f"{system}/{component} is not installed on {settings.host}")
        _log.always("Uninstalled", f"{system}/{component}")
        return S_OK({"System": system, "Component": component, "StoppedPIDs": stopped, "RemovedFromCS": removed})

    def _unsupervise(self, settings: InstanceSettings, system: str, component: str) -> dict:
        """Unlink from startup/, stop service, logger and runsv, keep the log, delete the folder."""
        folder = settings.componentDir(system, component)
        link = settings.startupLink(system, component)
        status = Runit.serviceStatus(folder) if os.path.isdir(folder) else S_ERROR("")
        pids = [pid for pid in self._componentPids(folder) if pid]
        try:
            if os.path.islink(link):
                os.unlink(link)
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot remove {link}: {exc}")
        if status["OK"] and status["Value"]["RunitStatus"] != "Unknown":
            Runit.runSv("force-stop", [folder], wait=STOP_WAIT)
            Runit.runSv("exit", [folder])
        left = Runit.waitGone(pids, STOP_WAIT)
        if left:
            Runit.killPids(left)
            left = Runit.waitGone(left, 5)
        if left:
            return S_ERROR(DErrno.EIO, f"{system}/{component}: processes {left} do not stop")
        try:
            kept = os.path.join(settings.logsDir, f"{system}_{component}.log")
            current = settings.logFile(system, component)
            if os.path.isfile(current):
                os.makedirs(settings.logsDir, exist_ok=True)
                with open(current, "rb") as source, open(kept, "ab") as target:
                    shutil.copyfileobj(source, target)
            if os.path.isdir(folder):
                shutil.rmtree(folder)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(folder))  # the system folder, when empty
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot remove {folder}: {exc}")
        return S_OK(pids)

    @staticmethod
    def _componentPids(folder: str) -> list[int]:
        """PIDs of the service and its logger (from runit's supervise/pid files) and their runsv."""
        pids = []
        for path in (os.path.join(folder, "supervise", "pid"), os.path.join(folder, "log", "supervise", "pid")):
            try:
                with open(path, encoding="ascii") as handle:
                    pids.append(int(handle.read().strip() or 0))
            except (OSError, ValueError):
                continue
        parents = set()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                    parents.add(int(handle.read().rsplit(")", 1)[-1].split()[1]))
            except (OSError, ValueError, IndexError):
                continue
        runsv = [
            pid
            for pid in parents
            if Runit.commandLine(pid)[:1] and os.path.basename(Runit.commandLine(pid)[0]) == "runsv"
        ]
        return [pid for pid in pids + runsv if Runit.isAlive(pid)]

    # control

    @staticmethod
    def _removeDownFile(settings: InstanceSettings, system: str, component: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(settings.componentDir(system, component), "down"))

    def _stopQuietly(self, settings: InstanceSettings, system: str, component: str) -> None:
        folder = settings.componentDir(system, component)
        with contextlib.suppress(OSError), open(os.path.join(folder, "down"), "w"):
            pass
        Runit.runSv("force-stop", [folder], wait=STOP_WAIT)

    def getInstalledComponents(self) -> dict:
        """S_OK({"Services": {System: [Component, ...]}}) of the components with a runit folder here."""
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        root = settings["Value"].runitDir
        found: dict[str, list[str]] = {}
        if os.path.isdir(root):
            for system in sorted(os.listdir(root)):
                folder = os.path.join(root, system)
                if not os.path.isdir(folder) or not NAME.match(system):
                    continue
                components = [
                    name for name in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, name, "run"))
                ]
                if components:
                    found[system] = components
        return S_OK({"Services": found})

    def _targets(self, system: str, component: str) -> dict:
        """S_OK([(system, component)]) of installed components matching (``*`` = any)."""
        for label, name in (("system", system), ("component", component)):
            if name != "*":
                checked = checkName(label, name)
                if not checked["OK"]:
                    return checked
        installed = self.getInstalledComponents()
        if not installed["OK"]:
            return installed
        targets = [
            (sys_, comp)
            for sys_, comps in installed["Value"]["Services"].items()
            for comp in comps
            if system in ("*", sys_) and component in ("*", comp)
        ]
        if not targets:
            return S_ERROR(DErrno.ENOENT, f"no installed component matches {system} {component}")
        return S_OK(targets)

    def getComponentStatus(self, system: str = "*", component: str = "*") -> dict:
        """S_OK({"<System>_<Component>": {RunitStatus, PID, Timeup, System, Component, Type, Linked, ...}})."""
        targets = self._targets(system, component)
        if not targets["OK"]:
            if targets["Errno"] == DErrno.ENOENT and "*" in (system, component):
                return S_OK({})
            return targets
        settings = self.getSettings()["Value"]
        statuses = {}
        for sys_, comp in targets["Value"]:
            result = Runit.serviceStatus(settings.componentDir(sys_, comp))
            status = (
                result["Value"]
                if result["OK"]
                else {"RunitStatus": "Unknown", "PID": 0, "Timeup": 0, "Message": result["Message"]}
            )
            status.update(
                System=sys_, Component=comp, Type="service", Linked=os.path.islink(settings.startupLink(sys_, comp))
            )
            statuses[f"{sys_}_{comp}"] = status
        return S_OK(statuses)

    getStartupComponentStatus = getComponentStatus

    def _control(self, system: str, component: str, action: str, skip: set[str] = frozenset()) -> dict:
        targets = self._targets(system, component)
        if not targets["OK"]:
            return targets
        settings = self.getSettings()["Value"]
        done, failed = {}, []
        for sys_, comp in targets["Value"]:
            if f"{sys_}/{comp}" in skip:
                continue
            result = self._controlOne(settings, sys_, comp, action)
            if result["OK"]:
                done[f"{sys_}_{comp}"] = dict(result["Value"], System=sys_, Component=comp, Type="service")
            else:
                failed.append(result["Message"])
        if failed:
            return S_ERROR(DErrno.EIO, "\n".join(failed))
        return S_OK(done)

    def _controlOne(self, settings: InstanceSettings, system: str, component: str, action: str) -> dict:
        folder = settings.componentDir(system, component)
        before = Runit.serviceStatus(folder)
        if not before["OK"]:
            return before
        before = before["Value"]
        if before["RunitStatus"] == "Unknown":
            return S_ERROR(DErrno.EIO, f"{system}/{component} is not supervised (no runsv: is runsvdir running?)")
        if action == "stop":
            with contextlib.suppress(OSError), open(os.path.join(folder, "down"), "w"):
                pass
            result = Runit.runSv("force-stop", [folder], wait=STOP_WAIT)
            if not result["OK"]:
                return result
            after = Runit.serviceStatus(folder)
            if after["OK"] and after["Value"]["RunitStatus"] == "Run":
                return S_ERROR(DErrno.EIO, f"{system}/{component} did not stop: {after['Value']['Message']}")
            return after
        self._removeDownFile(settings, system, component)
        if action == "start" and before["RunitStatus"] == "Run":
            return S_OK(before)
        offset = self._logSize(settings, system, component)
        result = Runit.runSv("restart" if action == "restart" else "up", [folder])
        if not result["OK"]:
            return result
        oldPid = before["PID"] if before["RunitStatus"] == "Run" else 0
        return self.waitForComponent(system, component, offset, oldPid)

    def startComponent(self, system: str, component: str) -> dict:
        """Start (``sv up``) and wait until ready; S_OK({"<System>_<Component>": status})."""
        return self._control(system, component, "start")

    def stopComponent(self, system: str, component: str, skip: set[str] = frozenset()) -> dict:
        """Stop (``sv force-stop``) and keep it down (a ``down`` file) until started."""
        return self._control(system, component, "stop", skip)

    def restartComponent(self, system: str, component: str, skip: set[str] = frozenset()) -> dict:
        """Restart (``sv restart``) and wait until the new process is ready."""
        return self._control(system, component, "restart", skip)

    def runsvctrlComponent(self, system: str, component: str, mode: str) -> dict:
        """DIRAC's runsvctrl modes: ``u`` start, ``d`` stop, ``t`` restart."""
        actions = {"u": self.startComponent, "d": self.stopComponent, "t": self.restartComponent}
        if mode not in actions:
            return S_ERROR(DErrno.EVALUE, f"unknown runsvctrl mode {mode!r} (u, d or t)")
        return actions[mode](system, component)

    def getLogTail(self, system: str, component: str, length: int = 100) -> dict:
        """S_OK({"<System>_<Component>": last ``length`` lines of its log})."""
        for label, name in (("system", system), ("component", component)):
            checked = checkName(label, name)
            if not checked["OK"]:
                return checked
        if not isinstance(length, int) or not 0 < length <= MAX_LOG_LINES:
            return S_ERROR(DErrno.EVALUE, f"the number of lines must be 1..{MAX_LOG_LINES}")
        settings = self.getSettings()
        if not settings["OK"]:
            return settings
        path = settings["Value"].logFile(system, component)
        if not os.path.isfile(path):
            kept = os.path.join(settings["Value"].logsDir, f"{system}_{component}.log")
            if not os.path.isfile(kept):
                return S_ERROR(DErrno.ENOENT, f"no log for {system}/{component} (not installed on this host?)")
            path = kept
        return S_OK({f"{system}_{component}": Runit.tailFile(path, length)})


gComponentInstaller = ComponentInstaller()

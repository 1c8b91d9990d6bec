"""The shell of ``dirac-admin-sysadmin-cli``: administer one host through its SystemAdministrator.

Commands (``help <command>`` tells more)::

    install service <System> <Service> [-m <Module>] [-p <Option>=<Value> ...]
    uninstall service <System> <Service>
    start|stop|restart <System> <Component>      (or *, or <System> *)
    status [<System> [<Component>]]
    show installed
    show log <System> <Component> [<lines>]
    quit

Each command that fails prints ``ERROR: ...`` on stderr and is counted in ``failures``,
so a script feeding commands on standard input gets a non-zero exit code.
"""

from __future__ import annotations

import cmd
import shlex
import sys
from typing import TextIO

from DIRAC.FrameworkSystem.Client.SystemAdministratorClient import SystemAdministratorClient


def _uptime(seconds: int) -> str:
    minutes, secs = divmod(int(seconds or 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class SystemAdministratorClientCLI(cmd.Cmd):
    """An interactive (or scripted) shell on one host's SystemAdministrator."""

    def __init__(
        self, client: SystemAdministratorClient, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        super().__init__(stdout=stdout or sys.stdout)
        self.client = client
        self.stderr = stderr or sys.stderr
        self.prompt = f"[{client.host}]> "
        self.failures = 0

    # output

    def _say(self, text: str) -> None:
        print(text, file=self.stdout)

    def _error(self, text: str) -> None:
        self.failures += 1
        print(f"ERROR: {text}", file=self.stderr)

    def _usage(self, command: str) -> None:
        doc = getattr(self, f"do_{command}").__doc__ or ""
        self._error(f"usage: {doc.strip().splitlines()[0]}")

    def _call(self, result: dict) -> dict | None:
        """The value of an S_OK; None (and the error printed) for an S_ERROR."""
        if result["OK"]:
            return result["Value"]
        self._error(result["Message"])
        return None

    def _printStatus(self, statuses: dict) -> None:
        self._say(f"{'System':<18} {'Component':<24} {'Status':<8} {'PID':<8} Uptime")
        for _name, status in sorted(statuses.items()):
            self._say(
                f"{status.get('System', ''):<18} {status.get('Component', ''):<24} "
                f"{status.get('RunitStatus', '?'):<8} {status.get('PID') or '-':<8} {_uptime(status.get('Timeup', 0))}"
            )

    # commands

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:
        if line.strip().startswith("#"):
            return False
        self._error(f"unknown command: {line.split()[0]} (type help)")
        return False

    def do_install(self, args: str) -> None:
        """install service <System> <Service> [-m <Module>] [-p <Option>=<Value> ...]

        Install a service on the host: its defaults from the system's ConfigTemplate.cfg and the
        options given with -p go into the central configuration with its URL, runit supervises
        it, and the command waits until it is ready. -m runs another service's handler under
        this name. Example: install service DataManagement S3Gateway -p Port=9198
        """
        words = self._split(args)
        if words is None:
            return
        if len(words) < 3 or words[0] != "service":
            self._usage("install")
            return
        system, service, rest = words[1], words[2], words[3:]
        options: dict[str, str] = {}
        while rest:
            flag = rest.pop(0)
            if flag in ("-p", "-m") and rest:
                value = rest.pop(0)
                if flag == "-m":
                    options["Module"] = value
                    continue
                name, sep, optionValue = value.partition("=")
                if not sep or not name:
                    self._error(f"-p {value}: expected Option=Value")
                    return
                options[name.strip()] = optionValue.strip()
            else:
                self._usage("install")
                return
        info = self._call(self.client.installComponent("service", system, service, options))
        if info is not None:
            pid = info.get("Status", {}).get("PID", "-")
            self._say(f"{system}/{service} {info.get('Action', 'installed')} at {info.get('URL')} (pid {pid})")

    def do_uninstall(self, args: str) -> None:
        """uninstall service <System> <Service>

        Stop the service, take it out of runit's supervision (its log is kept in logs/) and
        remove this host's URL (and, when no other host runs it, its section) from the
        central configuration.
        """
        words = self._split(args)
        if words is None:
            return
        if len(words) != 3 or words[0] != "service":
            self._usage("uninstall")
            return
        info = self._call(self.client.uninstallComponent("service", words[1], words[2]))
        if info is not None:
            self._say(f"{words[1]}/{words[2]} uninstalled")

    def _control(self, action: str, args: str) -> None:
        words = self._split(args)
        if words is None:
            return
        if words == ["*"]:
            words = ["*", "*"]
        if len(words) != 2:
            self._usage(action)
            return
        method = getattr(self.client, f"{action}Component")
        statuses = self._call(method(words[0], words[1]))
        if statuses is not None:
            self._printStatus(statuses)

    def do_start(self, args: str) -> None:
        """start <System> <Component> | start * | start <System> *

        Start components and wait until they are ready.
        """
        self._control("start", args)

    def do_stop(self, args: str) -> None:
        """stop <System> <Component> | stop * | stop <System> *

        Stop components; they stay down until started (the configuration server and the
        SystemAdministrator cannot be stopped from here).
        """
        self._control("stop", args)

    def do_restart(self, args: str) -> None:
        """restart <System> <Component> | restart * | restart <System> *

        Restart components and wait until the new processes are ready (restart * leaves the
        SystemAdministrator itself alone; restart Framework SystemAdministrator restarts it).
        """
        self._control("restart", args)

    def do_status(self, args: str) -> None:
        """status [<System> [<Component>]]

        The runit status of the installed components: Run/Down, PID, uptime.
        """
        words = self._split(args)
        if words is None:
            return
        if len(words) > 2:
            self._usage("status")
            return
        words += ["*"] * (2 - len(words))
        statuses = self._call(self.client.getComponentStatus(words[0], words[1]))
        if statuses is not None:
            self._printStatus(statuses)

    def do_show(self, args: str) -> None:
        """show installed | show log <System> <Component> [<lines>]

        show installed: the components installed on the host.
        show log: the last lines (default 40) of a component's log.
        """
        words = self._split(args)
        if words is None:
            return
        if words == ["installed"]:
            installed = self._call(self.client.getInstalledComponents())
            if installed is not None:
                for kind, systems in sorted(installed.items()):
                    for system, components in sorted(systems.items()):
                        for component in components:
                            self._say(f"{kind[:-1].lower():<8} {system}/{component}")
            return
        if words[:1] == ["log"] and len(words) in (3, 4):
            try:
                lines = int(words[3]) if len(words) == 4 else 40
            except ValueError:
                self._error(f"show log: {words[3]!r} is not a number of lines")
                return
            tail = self._call(self.client.getLogTail(words[1], words[2], lines))
            if tail is not None:
                for text in tail.values():
                    self._say(text)
            return
        self._usage("show")

    def do_quit(self, args: str) -> bool:
        """quit: leave the shell."""
        return True

    do_exit = do_quit

    def do_EOF(self, args: str) -> bool:
        """Leave the shell (Ctrl-D)."""
        self._say("")
        return True

    def _split(self, args: str) -> list[str] | None:
        try:
            return shlex.split(args)
        except ValueError as exc:
            self._error(f"cannot parse {args!r}: {exc}")
            return None

    def runScript(self, lines, echo: bool = True) -> int:
        """Run commands from an iterable of lines (stdin when it is not a terminal); the failure count."""
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if echo:
                self._say(f"{self.prompt}{line}")
            if self.onecmd(line):
                break
        return self.failures

"""runit supervision: ``sv`` control and status, ``runsvdir`` start and stop, process trees by PID.

A component ``<System>/<Component>`` of an instance lives in ``runit/<System>/<Component>/``
(``run``, ``log/run``, ``supervise/``) and is supervised once ``startup/<System>_<Component>``
links to that folder: ``runsvdir`` (started on ``startup/``) notices new links within
about five seconds and starts one ``runsv`` per link, which runs the ``run`` script and
restarts it when it dies. Everything here works by path and by PID; nothing is found by
process name only.

Functions return S_OK/S_ERROR and never raise. This platform's PID 1 may not reap
orphans, so a zombie counts as a stopped process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

SV_TIMEOUT = 30.0
POLL = 0.1
RUNIT_HINT = "install the Debian/Ubuntu package 'runit' (apt-get install runit)"
_STATUS = re.compile(
    r"^(?P<state>run|down|finish): (?P<path>[^:]+): (?:\(pid (?P<pid>\d+)\) )?(?P<secs>\d+)s(?P<rest>[^;]*)"
)
_LOG_STATUS = re.compile(r"; (?P<state>run|down|finish): log: (?:\(pid (?P<pid>\d+)\) )?(?P<secs>\d+)s")
_STATES = {"run": "Run", "down": "Down", "finish": "Finish"}


def findTool(name: str) -> str | None:
    """Absolute path of a runit tool (``sv``, ``runsvdir``, ``svlogd``), None when not installed."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/bin", "/usr/sbin", "/sbin", "/bin"):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def checkTools() -> dict:
    """S_OK({tool: path}) when runit's tools are installed, S_ERROR naming the missing ones."""
    tools = {name: findTool(name) for name in ("runsvdir", "runsv", "sv", "svlogd")}
    missing = sorted(name for name, path in tools.items() if not path)
    if missing:
        return S_ERROR(DErrno.ENOENT, f"runit is not installed (missing {', '.join(missing)}): {RUNIT_HINT}")
    return S_OK(tools)


def runSv(command: str, serviceDirs: list[str], wait: float | None = None) -> dict:
    """Run ``sv [-w wait] <command> <dirs>``; S_OK((exit code, output)), S_ERROR when sv cannot run."""
    sv = findTool("sv")
    if sv is None:
        return S_ERROR(DErrno.ENOENT, f"sv not found: {RUNIT_HINT}")
    args = [sv] + (["-w", str(max(1, int(wait)))] if wait else []) + [command] + list(serviceDirs)
    try:
        done = subprocess.run(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=(wait or 0) + SV_TIMEOUT,
            text=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return S_ERROR(DErrno.EIO, f"sv {command} failed: {exc}")
    return S_OK((done.returncode, done.stdout))


def parseSvStatus(text: str) -> dict:
    """One ``sv status`` line as DIRAC's status dict.

    ``RunitStatus`` (``Run``, ``Down``, ``Finish``, or ``Unknown`` when no runsv supervises the
    folder), ``PID`` (0 when not running), ``Timeup`` (seconds in that state), ``WantUp``
    (runsv will start it again), ``NormallyDown`` (a ``down`` file exists) and ``LogStatus``.
    """
    line = text.strip().splitlines()[-1] if text.strip() else ""
    match = _STATUS.match(line)
    if not match:
        return {
            "RunitStatus": "Unknown",
            "PID": 0,
            "Timeup": 0,
            "WantUp": False,
            "NormallyDown": False,
            "LogStatus": "Unknown",
            "Message": line,
        }
    rest = match.group("rest")
    state = match.group("state")
    log = _LOG_STATUS.search(line)
    return {
        "RunitStatus": _STATES[state],
        "PID": int(match.group("pid") or 0),
        "Timeup": int(match.group("secs")),
        "WantUp": "want up" in rest or (state == "run" and "want down" not in rest),
        "NormallyDown": "normally down" in rest,
        "LogStatus": _STATES[log.group("state")] if log else "None",
        "Message": line,
    }


def serviceStatus(serviceDir: str) -> dict:
    """S_OK(status dict, see ``parseSvStatus``) of one supervised folder."""
    result = runSv("status", [serviceDir])
    if not result["OK"]:
        return result
    return S_OK(parseSvStatus(result["Value"][1]))


# processes ------------------------------------------------------------------------------------


def processState(pid: int) -> str:
    """``alive``, ``zombie`` or ``gone`` (a zombie has exited: only its parent has not reaped it)."""
    if pid <= 0:
        return "gone"
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return "gone"
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return "zombie" if state in ("Z", "X") else "alive"


def isAlive(pid: int) -> bool:
    """True when ``pid`` is a running (not zombie) process."""
    return processState(pid) == "alive"


def _parentOf(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def descendants(roots: list[int]) -> list[int]:
    """The PIDs of every living process below ``roots`` (one /proc scan)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parents.setdefault(_parentOf(int(entry)), []).append(int(entry))
    found: list[int] = []
    todo = list(roots)
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return [pid for pid in found if isAlive(pid)]


def commandLine(pid: int) -> list[str]:
    """The argv of ``pid`` ([] when unknown)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def processCwd(pid: int) -> str:
    """The working folder of ``pid`` ("" when it cannot be read)."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def waitGone(pids: list[int], timeout: float) -> list[int]:
    """Wait (bounded) until the PIDs are gone; returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if isAlive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(POLL)
        _reap(alive)
        alive = [pid for pid in alive if isAlive(pid)]
    return alive


def _reap(pids: list[int]) -> None:
    """Collect those of ``pids`` that are our own exited children (never any other child)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass


def killPids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to each living PID (errors ignored: a process may end meanwhile)."""
    for pid in pids:
        if isAlive(pid):
            try:
                os.kill(pid, sig)
            except OSError:
                pass


# runsvdir -------------------------------------------------------------------------------------


def runsvdirPid(pidFile: str, startupDir: str) -> int:
    """The PID recorded in ``pidFile`` when it is a living ``runsvdir`` on ``startupDir``, else 0."""
    try:
        with open(pidFile, encoding="ascii") as handle:
            pid = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    if not isAlive(pid):
        return 0
    argv = commandLine(pid)
    if not argv or os.path.basename(argv[0]) != "runsvdir":
        return 0
    target = os.path.realpath(startupDir)
    return pid if any(os.path.realpath(arg) == target for arg in argv[1:] if arg.startswith("/")) else 0


def startRunsvdir(startupDir: str, pidFile: str, logFile: str, env: dict[str, str]) -> dict:
    """Start ``runsvdir -P startupDir`` detached (own session); S_OK(pid) recorded in ``pidFile``.

    Reuses a runsvdir already recorded and alive.
    """
    pid = runsvdirPid(pidFile, startupDir)
    if pid:
        return S_OK(pid)
    tools = checkTools()
    if not tools["OK"]:
        return tools
    try:
        with open(logFile, "ab") as log:
            process = subprocess.Popen(
                [tools["Value"]["runsvdir"], "-P", os.path.abspath(startupDir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=os.path.dirname(os.path.abspath(startupDir)),
                start_new_session=True,
            )
        tmp = f"{pidFile}.tmp"
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(f"{process.pid}\n")
        os.replace(tmp, pidFile)
    except OSError as exc:
        return S_ERROR(DErrno.EIO, f"cannot start runsvdir on {startupDir}: {exc}")
    time.sleep(0.2)
    if process.poll() is not None:
        return S_ERROR(DErrno.EIO, f"runsvdir exited at once with code {process.returncode}; see {logFile}")
    return S_OK(process.pid)


def supervisedDirs(startupDir: str) -> list[str]:
    """The real folders linked from ``startupDir`` (broken links skipped)."""
    if not os.path.isdir(startupDir):
        return []
    found = []
    for name in sorted(os.listdir(startupDir)):
        path = os.path.realpath(os.path.join(startupDir, name))
        if os.path.isdir(path):
            found.append(path)
    return found


def _orphanRunsv(instanceDir: str) -> list[int]:
    """``runsv`` processes working inside ``instanceDir`` (left behind when runsvdir was killed)."""
    root = os.path.realpath(instanceDir) + os.sep
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and isAlive(int(entry)):
            argv = commandLine(int(entry))
            if argv and os.path.basename(argv[0]) == "runsv" and processCwd(int(entry)).startswith(root):
                pids.append(int(entry))
    return pids


def stopSupervision(instanceDir: str, startupDir: str, pidFile: str, timeout: float = 20.0) -> dict:
    """Stop every supervised component, their ``runsv``, their loggers and ``runsvdir``, by PID.

    Order: ``sv force-stop`` (TERM, then KILL after ``timeout``), ``sv exit`` (runsv ends
    once its service and logger are down), HUP to runsvdir, then a bounded wait and
    SIGKILL of whatever is left of the recorded tree. S_OK(list of PIDs that were stopped).
    """
    dirs = supervisedDirs(startupDir)
    rootPid = runsvdirPid(pidFile, startupDir)
    roots = list(dict.fromkeys(([rootPid] if rootPid else []) + _orphanRunsv(instanceDir)))
    tree = list(dict.fromkeys(roots + descendants(roots)))
    if dirs:
        runSv("force-stop", dirs, wait=timeout)
        runSv("exit", dirs)
    if rootPid:
        killPids([rootPid], signal.SIGHUP)
    left = waitGone(tree, min(timeout, 10.0))
    if left:
        killPids(left, signal.SIGKILL)
        left = waitGone(left, 5.0)
    try:
        os.unlink(pidFile)
    except OSError:
        pass
    if left:
        return S_ERROR(DErrno.EIO, f"processes still alive after SIGKILL: {left}")
    return S_OK(tree)


def tailFile(path: str, lines: int) -> str:
    """The last ``lines`` lines of a text file ("" when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            block = min(size, max(4096, lines * 300))
            handle.seek(size - block)
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])

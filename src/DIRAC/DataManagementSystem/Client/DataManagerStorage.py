"""The storage side of the DataManager: SE look-up, checked downloads, verified copies, clean-up.

Everything here talks to ``StorageElement`` objects only, never to the
catalog; the DataManager decides what to do with the outcomes.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import compareAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK, returnSingleResult
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import checkLocalCopy, splitBulk
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Storage.StorageElement import StorageElement
from DIRAC.Resources.Storage.Utilities import runBulk

#: Local-copy replications at once in this process, whatever the number of bulk calls (disk space).
REPLICATION_WORKERS = 8
_localCopySlots = threading.BoundedSemaphore(REPLICATION_WORKERS)
#: Direct (server-side or streamed) copies at once in this process, whatever the number of bulk calls:
#: no local disk, and each file's memory is bounded, so this bounds the memory of all.
DIRECT_COPY_WORKERS = 16
_directCopySlots = threading.BoundedSemaphore(DIRECT_COPY_WORKERS)
#: How ``replicateAndRegister`` names the way a file was copied.
LOCAL_COPY = "local copy"
#: Temporary replication folders: name prefix, owner marker inside, age after which an unmarked one is abandoned.
TEMP_PREFIX = "dirac-replicate-"
OWNER_FILE = ".owner"
UNMARKED_AGE = 3600
#: What an SE holds under an LFN, as ``inspect`` finds it.
PRESENT, ABSENT, UNKNOWN = "present", "absent", "unknown"


def matches(metadata: dict, size: Any, checksum: Any) -> bool:
    """True when an SE's metadata of an object shows ``size`` bytes with adler32 ``checksum``."""
    if metadata.get("Size") != size:
        return False
    if not checksum:  # a catalog entry without a checksum: the size is all we can compare
        return True
    stored = metadata.get("Checksum")
    return bool(stored) and compareAdler(str(stored), str(checksum))


class StorageOperations:
    """Storage elements by name (cached) and the checked transfers the DataManager builds on."""

    def __init__(self, vo: str | None = None, log: Any = None):
        self.vo = vo
        self.log = log or gLogger.getSubLogger("DataManager")
        self._cache: dict[str, StorageElement] = {}

    def storageElement(self, name: Any, operation: str = "") -> dict:
        """S_OK(StorageElement) for ``name`` when it is defined and allows ``operation``."""
        if not isinstance(name, str) or not name:
            return S_ERROR(DErrno.EINVAL, f"storage element name must be a non-empty string, got {name!r}")
        se = self._cache.get(name)
        if se is None:
            se = StorageElement(name, vo=self.vo)
            if not se.valid:
                return S_ERROR(DErrno.ECONF, f"storage element {name} is not usable: {se.errorReason}")
            self._cache[name] = se
        allowed = se.isValid(operation)
        return S_OK(se) if allowed["OK"] else allowed

    def urls(self, se: StorageElement, lfns: list[str]) -> dict:
        """{lfn: native URL at ``se``}, '' where the SE cannot tell (the catalog accepts an empty PFN)."""
        result = se.getURL(lfns) if lfns else S_ERROR("nothing to do")
        found = result["Value"]["Successful"] if result["OK"] else {}
        return {lfn: found.get(lfn, "") for lfn in lfns}

    def removeObjects(self, se: StorageElement, lfns: list[str]) -> dict:
        """{lfn: reason} for LFNs whose object at ``se`` is still there after a removal (a missing one is removed).

        A failed removal is checked: when the SE says the object is gone (the answer was lost), it was removed.
        """
        if not lfns:
            return {}
        failed = splitBulk(se.removeFile(lfns), lfns, f"removal from {se.name}")[1]
        for name, (kind, _detail) in self.inspect(se, list(failed)).items():
            if kind == ABSENT:
                del failed[name]
        return failed

    def inspect(self, se: StorageElement, lfns: list[str]) -> dict[str, tuple[str, Any]]:
        """What ``se`` holds under each LFN, asked rather than assumed after an unclear failure.

        ``{lfn: (PRESENT, metadata)}``, ``(ABSENT, reason)`` when the SE says there is
        nothing, ``(UNKNOWN, reason)`` when it cannot tell (SE unreachable, refused).
        """
        if not lfns:
            return {}
        found, errors = splitBulk(se.getFileMetadata(lfns), lfns, f"checking {se.name}")
        state: dict[str, tuple[str, Any]] = {name: (PRESENT, meta) for name, meta in found.items()}
        if errors:
            there, unclear = splitBulk(se.exists(list(errors)), list(errors), f"checking {se.name}")
            for name in errors:
                if there.get(name) is False:
                    state[name] = (ABSENT, f"nothing is stored at {se.name}")
                else:
                    state[name] = (UNKNOWN, unclear.get(name, errors[name]))
        return state

    def cleanUp(self, se: StorageElement, reasons: dict, what: str, expected: dict) -> None:
        """Remove the objects made at ``se`` for the LFNs of ``reasons``, only those provably ours.

        ``expected`` is ``{lfn: (size, checksum)}`` of what we wrote: an object that
        differs is another writer's and is left alone; so is one the SE cannot
        describe. Each reason says what happened to the object.
        """
        state = self.inspect(se, list(reasons))
        ours = []
        for lfn in reasons:
            kind, detail = state[lfn]
            if kind == ABSENT:
                reasons[lfn] += f"; nothing was left at {se.name}"
            elif kind == UNKNOWN:
                reasons[lfn] += (
                    f"; cannot tell what {se.name} holds ({detail}), so the {what} was left: "
                    "run the same command again, or dirac-dms-check-se"
                )
                self.log.error("Possible dark data after a failure", f"{lfn} at {se.name}")
            elif not matches(detail, *expected[lfn]):
                reasons[lfn] += f"; the object at {se.name} is not ours (another writer's), it was left untouched"
            else:
                ours.append(lfn)
        leftovers = self.removeObjects(se, ours)
        for lfn in ours:
            if lfn in leftovers:
                reasons[lfn] += f"; removing the {what} at {se.name} failed too ({leftovers[lfn]}): dark data left"
                self.log.error("Dark data left after a failure", f"{lfn} at {se.name}")
            else:
                reasons[lfn] += f"; the {what} at {se.name} was removed"

    def download(self, seName: str, lfns: list[str], destination: str, metadata: dict) -> dict:
        """{lfn: S_OK(localPath) / S_ERROR} for downloading ``lfns`` from one SE, checked against the catalog."""
        result = self.storageElement(seName, "getFile")
        if not result["OK"]:
            return dict.fromkeys(lfns, result)
        got, errors = splitBulk(result["Value"].getFile(lfns, localPath=destination), lfns, "download")
        outcome = {name: S_ERROR(reason) for name, reason in errors.items()}
        for name in got:
            target = os.path.join(destination, os.path.basename(name))
            checked = checkLocalCopy(target, metadata[name].get("Size"), metadata[name].get("Checksum"))
            if checked["OK"]:
                outcome[name] = S_OK(target)
            else:
                unlink(target)
                outcome[name] = S_ERROR(f"{checked['Message']}; the bad copy was deleted")
        return outcome

    def copyDirect(
        self, sources: dict[str, list[str]], destination: StorageElement, metadata: dict
    ) -> tuple[dict, dict, dict]:
        """Copy each LFN from its first usable source SE by a server-side or streamed copy, no local file.

        Returns ``(copied, failed, local)``: ``{lfn: transfer}`` (see ``_transfer``),
        ``{lfn: reason}``, and ``{lfn: [source SEs]}`` for the LFNs no direct way can
        copy from those sources (for ``copyThroughLocalFiles``). A copy answered OK
        was verified at the destination by its way (size and adler32 against the
        catalog's, the ways' contract); after any other answer (it may have been
        lost) the destination is asked here, and a copy that is not right is removed.
        """
        outcomes, failed = runBulk(
            sources.items(),
            lambda name, seNames: self._copyDirectOne(name, seNames, destination, metadata[name]),
            maxWorkers=DIRECT_COPY_WORKERS,
        )
        copied = {name: value for name, value in outcomes.items() if "transfer" in value}
        local = {name: value["localSources"] for name, value in outcomes.items() if "localSources" in value}
        return copied, failed, local

    def _copyDirectOne(self, lfn: str, seNames: list[str], destination: StorageElement, meta: dict) -> dict:
        """S_OK(transfer) from the first source that copies ``lfn``; S_OK({'localSources'}) when none can.

        A source whose copy fails for real (after the copy's own clean-up and our
        check of the destination) is followed by the next one.
        """
        items = {lfn: {"Size": meta.get("Size"), "Checksum": meta.get("Checksum")}}
        problems: list[str] = []
        cannot: list[str] = []
        for seName in seNames:
            source = self.storageElement(seName, "getFile")
            with _directCopySlots:  # the time waited for a slot is not the copy's
                start = time.monotonic()
                answers = destination.copyFromSEPerFile(source["Value"], items) if source["OK"] else source
            if not answers["OK"]:  # nothing was tried
                problems.append(f"no copy from {seName}: {answers['Message']}; nothing copied")
                continue
            answer = answers["Value"][lfn]
            if DErrno.cmpError(answer, DErrno.EPROTONOSUPPORT):
                cannot.append(seName)
                self.log.verbose("No direct copy, local copy instead", f"{lfn} from {seName}: {answer['Message']}")
                continue
            if answer["OK"]:  # the way verified the destination against the catalog's size and adler32
                way = answer["Value"]["Way"]
            else:
                checked = self._checkCopy(destination, lfn, meta, f"copy from {seName} failed: {answer['Message']}")
                if not checked["OK"]:
                    problems.append(checked["Message"])
                    continue
                way = answer["Way"]  # the answer was lost, the copy is there and right
            return S_OK(_transfer(way, meta.get("Size") or 0, time.monotonic() - start))
        if cannot:
            return S_OK({"localSources": cannot})
        return S_ERROR(problems[0] if len(problems) == 1 else "no source could be copied: " + " | ".join(problems))

    def copyThroughLocalFiles(
        self, sources: dict[str, list[str]], destination: StorageElement, metadata: dict, localCache: str
    ) -> tuple[dict, dict]:
        """Copy each LFN via a local file in one fresh temporary folder, always removed at the end.

        Returns ``({lfn: transfer}, {lfn: reason})``. The folder names its owner
        process (``.owner``), so a later run removes it when this process was
        killed before its own clean-up.
        """
        try:
            if localCache:
                os.makedirs(localCache, exist_ok=True)
            removeAbandonedFolders(localCache or tempfile.gettempdir(), self.log)
            workdir = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=localCache or None)
            with open(os.path.join(workdir, OWNER_FILE), "w") as marker:
                marker.write(ownerStamp())
        except OSError as exc:
            where = localCache or tempfile.gettempdir()
            return {}, dict.fromkeys(sources, f"cannot create a temporary folder in {where}: {exc.strerror}")
        numbered = {name: index for index, name in enumerate(sources)}
        try:

            def copyOne(name: str, seNames: list[str]) -> dict:
                folder = os.path.join(workdir, str(numbered[name]))
                with _localCopySlots:
                    os.mkdir(folder)
                    start = time.monotonic()
                    try:
                        copied = self._copyOne(name, seNames, destination, metadata[name], folder)
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
                if not copied["OK"]:
                    return copied
                return S_OK(_transfer(LOCAL_COPY, metadata[name].get("Size") or 0, time.monotonic() - start))

            return runBulk(sources.items(), copyOne, maxWorkers=REPLICATION_WORKERS)
        finally:
            self._removeFolder(workdir)

    def _removeFolder(self, folder: str) -> None:
        """Remove a temporary folder; what cannot be removed is logged (rmtree's error hook differs by version)."""

        def report(_function: Any, path: str, error: Any) -> None:
            problem = error[1] if isinstance(error, tuple) else error
            self.log.error("Cannot remove the temporary copy", f"{path}: {problem}")

        if sys.version_info >= (3, 12):
            shutil.rmtree(folder, onexc=report)
        else:
            shutil.rmtree(folder, onerror=report)

    def _copyOne(self, lfn: str, seNames: list[str], destination: StorageElement, meta: dict, folder: str) -> dict:
        """Download ``lfn`` from the first good source, check it, upload it, check the destination."""
        local = os.path.join(folder, os.path.basename(lfn))
        problems = []
        for seName in seNames:
            outcome = self.download(seName, [lfn], folder, {lfn: meta})[lfn]
            if outcome["OK"]:
                break
            problems.append(f"{seName}: {outcome['Message']}")
        else:
            return S_ERROR(DErrno.EIO, "no good source copy: " + " | ".join(problems) + "; nothing registered")
        put = returnSingleResult(destination.putFile({lfn: local}, sourceSize=meta.get("Size") or 0))
        unlink(local)
        return self._checkCopy(
            destination, lfn, meta, "" if put["OK"] else f"upload to {destination.name} failed: {put['Message']}"
        )

    def _checkCopy(self, destination: StorageElement, lfn: str, meta: dict, problem: str) -> dict:
        """S_OK when ``destination`` now holds the catalog's bytes of ``lfn``; else the copy is undone.

        Whatever the copy answered (``problem``: '' when it said OK; its answer may
        have been lost), the object now at the destination decides.
        """
        kind, detail = self.inspect(destination, [lfn])[lfn]
        if kind == PRESENT and matches(detail, meta.get("Size"), meta.get("Checksum")):
            return S_OK(True)
        if kind == ABSENT:
            return S_ERROR(f"{problem or detail}; nothing stored at {destination.name}; nothing registered")
        if kind == UNKNOWN:
            message = f"{problem or 'the copy was made'}; cannot check the copy at {destination.name}: {detail}"
        else:
            message = (
                f"the copy at {destination.name} has size {detail.get('Size')} and adler32 {detail.get('Checksum')}, "
                f"the catalog says {meta.get('Size')} and {meta.get('Checksum')}"
            )
            message = f"{problem}; {message}" if problem else message
        return self._undoCopy(destination, lfn, message)

    def _undoCopy(self, destination: StorageElement, lfn: str, message: str) -> dict:
        """Remove a copy that is not a valid replica (it does not match the catalog, or may be partial)."""
        leftover = self.removeObjects(destination, [lfn])
        if lfn in leftover:
            self.log.error("Dark data left after a failure", f"{lfn} at {destination.name}")
            return S_ERROR(
                f"{message}; removing it failed too ({leftover[lfn]}): dark data left at {destination.name}; "
                "nothing registered: run the same command again, or dirac-dms-check-se"
            )
        return S_ERROR(f"{message}; the half-made copy at {destination.name} was removed; nothing registered")


def _transfer(way: str, size: int, seconds: float) -> dict:
    """What ``replicateAndRegister`` reports of one copy: the way, the bytes and the seconds it took."""
    return {"transfer": way, "bytes": size, "replicate": seconds}


def _processStart(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, Linux), "" when unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def ownerStamp(pid: int | None = None) -> str:
    """``host pid start`` naming the process that owns a temporary folder."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()} {pid} {_processStart(pid)}"


def ownerGone(stamp: str) -> bool:
    """True when the process named by ``stamp`` (this host only) no longer runs; a reused PID is told apart."""
    parts = stamp.split()
    if len(parts) not in (2, 3) or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, start = int(parts[1]), parts[2] if len(parts) == 3 else ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's live process
    return bool(start) and _processStart(pid) not in ("", start)


def removeAbandonedFolders(parent: str, log: Any) -> list[str]:
    """Remove our ``dirac-replicate-*`` folders under ``parent`` whose owner process is gone; their paths.

    Only real folders owned by this user are considered. A folder without an owner
    marker is removed once older than ``UNMARKED_AGE`` seconds (its owner died
    between creating it and writing the marker).
    """
    removed = []
    try:
        names = [name for name in os.listdir(parent) if name.startswith(TEMP_PREFIX)]
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(parent, name)
        try:
            info = os.lstat(folder)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue  # only our own real folders (a shared /tmp holds other users' and links)
        try:
            with open(os.path.join(folder, OWNER_FILE)) as marker:
                abandoned = ownerGone(marker.read())
        except FileNotFoundError:
            abandoned = time.time() - info.st_mtime > UNMARKED_AGE
        except OSError:
            abandoned = False
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)
            log.warn("Removed the temporary folder of a replication that did not finish", folder)
            removed.append(folder)
    return removed


def unlink(path: str) -> None:
    """Delete a local file; a missing one is fine, another failure is logged."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        gLogger.getSubLogger("DataManager").error("Cannot delete a local copy", f"{path}: {exc.strerror}")

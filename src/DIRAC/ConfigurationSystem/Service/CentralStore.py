"""The central configuration file on the server's disk, with its version.

The version is a UTC timestamp string (``YYYY-MM-DD HH:MM:SS.ffffff``) stored in
the file itself at ``/DIRAC/Configuration/Version``, so it survives restarts and is
the same for every server process reading the file. A file without one gets a
version derived from its modification time.

A commit names the version it was based on and is refused when the file moved on
meanwhile (no lost update). It is written atomically (temporary file, fsync,
rename) under an exclusive lock shared by every process on the host, and the
previous file is kept in ``<file>.history/`` (the last ``HISTORY_SIZE`` versions).
"""

from __future__ import annotations

import base64
import datetime
import fcntl
import os
import tempfile
import threading
import zlib

from diraccfg import CFG

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

VERSION_OPTION = "DIRAC/Configuration/Version"
HISTORY_SIZE = 20
_VERSION_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def versionFromTime(timestamp: float) -> str:
    """The version string of a point in time."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime(_VERSION_FORMAT)


def compress(text: str) -> str:
    """JSON-safe transport form of a cfg text: base64 of zlib."""
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 6)).decode("ascii")


def decompress(data: str) -> dict:
    """S_OK(cfg text) from ``compress`` output, S_ERROR when it is not."""
    try:
        return S_OK(zlib.decompress(base64.b64decode(data, validate=True)).decode("utf-8"))
    except (ValueError, zlib.error, UnicodeDecodeError) as exc:
        return S_ERROR(DErrno.EVALUE, f"invalid compressed configuration data: {exc}")


def parseCFG(text: str) -> dict:
    """S_OK(CFG) of a cfg text, S_ERROR saying why it does not parse."""
    try:
        return S_OK(CFG().loadFromBuffer(text))
    except Exception as exc:  # noqa: BLE001 - diraccfg raises plain exceptions on syntax errors
        return S_ERROR(DErrno.EVALUE, f"invalid configuration text: {exc}")


class CentralStore:
    """Reads and commits one cfg file; safe for threads and for processes sharing the file."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._text = ""
        self._version = ""
        self._compressed = ""

    def _fileStamp(self) -> tuple:
        info = os.stat(self.path)
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _reload(self) -> dict:
        """Reread the file when it changed on disk (another process, an editor)."""
        try:
            stamp = self._fileStamp()
        except OSError as exc:
            return S_ERROR(DErrno.ENOENT, f"cannot read the central configuration {self.path}: {exc.strerror}")
        if stamp == self._stamp:
            return S_OK()
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot read the central configuration {self.path}: {exc.strerror}")
        parsed = parseCFG(text)
        if not parsed["OK"]:
            return S_ERROR(parsed["Errno"], f"{self.path}: {parsed['Message']}")
        cfg = parsed["Value"]
        version = cfg.getOption(VERSION_OPTION, "") or versionFromTime(stamp[0] / 1e9)
        self._stamp, self._text, self._version = stamp, text, version
        self._compressed = compress(text)
        return S_OK()

    def load(self) -> dict:
        """S_OK() when the file is readable and valid."""
        with self._lock:
            return self._reload()

    def current(self) -> dict:
        """S_OK({"version", "text", "compressed"}) of the file as it is now."""
        with self._lock:
            result = self._reload()
            if not result["OK"]:
                return result
            return S_OK({"version": self._version, "text": self._text, "compressed": self._compressed})

    def commit(self, text: str, baseVersion: str = "", author: str = "") -> dict:
        """S_OK(new version) after writing ``text``; S_ERROR when based on an older version or invalid."""
        parsed = parseCFG(text)
        if not parsed["OK"]:
            return parsed
        cfg = parsed["Value"]
        baseVersion = baseVersion or cfg.getOption(VERSION_OPTION, "")
        if not baseVersion:
            return S_ERROR(DErrno.EVALUE, "a commit must say which version it is based on")
        with self._lock, open(f"{self.path}.lock", "a") as lockFile:
            fcntl.flock(lockFile, fcntl.LOCK_EX)
            try:
                result = self._reload()
                if not result["OK"]:
                    return result
                if baseVersion != self._version:
                    return S_ERROR(
                        DErrno.EVALUE,
                        f"stale commit refused: it is based on version {baseVersion} but the configuration "
                        f"is now at version {self._version}; download it again and reapply the changes",
                    )
                newVersion = versionFromTime(datetime.datetime.now(datetime.UTC).timestamp())
                if newVersion <= self._version:
                    newVersion = _nextVersion(self._version)
                written = self._write(cfg, newVersion, author)
                if not written["OK"]:
                    return written
                self._stamp = None
                result = self._reload()
                return result if not result["OK"] else S_OK(self._version)
            finally:
                fcntl.flock(lockFile, fcntl.LOCK_UN)

    def _write(self, cfg: CFG, version: str, author: str) -> dict:
        if not cfg.isSection("DIRAC/Configuration"):
            for part in ("DIRAC", "DIRAC/Configuration"):
                if not cfg.isSection(part):
                    parent, _, name = part.rpartition("/")
                    (cfg.getRecursive(parent)["value"] if parent else cfg).createNewSection(name)
        cfg.setOption(VERSION_OPTION, version)
        if author:
            cfg.setOption("DIRAC/Configuration/CommittedBy", author)
        folder = os.path.dirname(self.path)
        self._keepHistory()
        try:
            fd, tmpPath = tempfile.mkstemp(prefix=".cfg-commit-", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(str(cfg))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmpPath, 0o644)
                os.replace(tmpPath, self.path)
            except BaseException:
                os.unlink(tmpPath)
                raise
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot write {self.path}: {exc.strerror}")
        return S_OK()

    def _keepHistory(self) -> None:
        """Copy the current file into the history folder and trim it (best effort)."""
        history = f"{self.path}.history"
        try:
            os.makedirs(history, exist_ok=True)
            name = os.path.basename(self.path)
            stamp = self._version.replace(" ", "_").replace(":", "")
            with open(os.path.join(history, f"{name}.{stamp}"), "w", encoding="utf-8") as handle:
                handle.write(self._text)
            entries = sorted(os.listdir(history))
            for old in entries[:-HISTORY_SIZE]:
                os.unlink(os.path.join(history, old))
        except OSError:
            pass

    def history(self) -> dict:
        """S_OK(list of kept versions' file names, oldest first)."""
        history = f"{self.path}.history"
        if not os.path.isdir(history):
            return S_OK([])
        return S_OK(sorted(os.listdir(history)))


def _nextVersion(version: str) -> str:
    try:
        moment = datetime.datetime.strptime(version, _VERSION_FORMAT)
    except ValueError:
        return versionFromTime(datetime.datetime.now(datetime.UTC).timestamp() + 1)
    return (moment + datetime.timedelta(microseconds=1)).strftime(_VERSION_FORMAT)

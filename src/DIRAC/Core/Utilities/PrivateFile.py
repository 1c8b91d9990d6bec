"""Files only their owner may read: proxies, keys, the configuration cache, the catalog's SQLite file, the audit trail.

Two operations, both refusing symbolic links and folders everybody may write to
(where another user could plant or swap a name):

* ``writePrivateFile(path, data)`` writes a whole file atomically: the bytes go to
  a fresh temporary name in the same folder (``O_CREAT | O_EXCL | O_NOFOLLOW``,
  mode 0600 from the first byte), which is then renamed onto ``path``. A link
  planted at ``path`` is refused, never written through.
* ``securePrivateFile(path, what)`` makes sure a file that programs append to or
  open by name (an SQLite database, an audit log) exists, is a regular file of
  ours and has mode 0600: it is created 0600 when missing and tightened to 0600
  when an earlier version left it readable by others (with a warning), and its
  folder is created 0700 when missing.

A folder writable by everybody is refused. ``writePrivateFile`` accepts a sticky one
(as ``/tmp``, where proxies live by default) when the file is ours: there nobody else
may rename or remove our entries, and the rename never follows a link.
``securePrivateFile`` does not: a database or log is opened by name again and again
(SQLite adds ``-wal`` / ``-shm`` files next to it), and in ``/tmp`` another user could
plant those names first.
"""

from __future__ import annotations

import os
import stat
import tempfile

from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger

PRIVATE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


class PrivateFileError(OSError):
    """A private file cannot be written or secured safely; the message says why."""


def _checkFolder(folder: str, what: str, allowSticky: bool) -> None:
    info = os.stat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise PrivateFileError(f"{what}: {folder} is not a folder")
    if info.st_mode & stat.S_IWOTH and not (allowSticky and info.st_mode & stat.S_ISVTX):
        raise PrivateFileError(f"{what}: folder {folder} is writable by everybody (mode {info.st_mode & 0o7777:o})")


def _checkTarget(path: str, what: str) -> os.stat_result | None:
    """The lstat of an existing ``path`` that is a regular file of ours; None when it does not exist."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise PrivateFileError(f"{what}: {path} is a symbolic link: refused (remove it or choose another name)")
    if not stat.S_ISREG(info.st_mode):
        raise PrivateFileError(f"{what}: {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise PrivateFileError(f"{what}: {path} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})")
    return info


def writePrivateFile(path: str, data: bytes | str, what: str = "private file") -> None:
    """Atomically replace ``path`` by ``data``, mode 0600; PrivateFileError / OSError when unsafe or impossible."""
    raw = data.encode() if isinstance(data, str) else data
    folder = os.path.dirname(os.path.abspath(path))
    _checkFolder(folder, what, allowSticky=True)
    _checkTarget(path, what)
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_MODE)
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def securePrivateFile(path: str, what: str) -> dict:
    """S_OK(path) once ``path`` is a regular file of ours with mode 0600 (created when missing); S_ERROR why not."""
    try:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=PRIVATE_FOLDER_MODE, exist_ok=True)
        _checkFolder(folder, what, allowSticky=False)
        info = _checkTarget(path, what)
        if info is None:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_MODE)
                os.close(fd)
            except FileExistsError:
                # Created in between by another process (two catalog instances starting on one new
                # SQLite file): checked like any existing file.
                info = _checkTarget(path, what)
        if info is not None and info.st_mode & 0o7777 != PRIVATE_MODE:
            os.chmod(path, PRIVATE_MODE, follow_symlinks=False)
            gLogger.warn(f"{what}: {path} had mode {info.st_mode & 0o7777:o}, tightened to {PRIVATE_MODE:o}")
    except PrivateFileError as exc:
        return S_ERROR(str(exc))
    except OSError as exc:
        return S_ERROR(f"{what}: cannot secure {path}: {exc.strerror or exc}")
    return S_OK(path)

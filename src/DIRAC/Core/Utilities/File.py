"""DIRAC's small file helpers, with DIRAC's names, arguments and return values.

As in DIRAC, these return plain values, not S_OK/S_ERROR: ``getSize`` answers -1
for a file it cannot stat, ``makeGuid`` None for a file it cannot read,
``convertSizeUnits`` ``-sys.maxsize`` for what it cannot convert; ``mkDir`` and
``mkLink`` raise OSError for what they cannot create.

Where DIRAC is unsafe we are not: ``secureOpenForWrite`` never follows a symbolic
link planted at the name and leaves the file with mode 600 even when it existed;
``getMD5ForFiles`` does not sort the caller's list in place.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import secrets
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO

#: Bytes per unit (binary multiples, as DIRAC).
SIZE_UNIT_CONVERSION = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}
GUID_BYTES_READ = 10 * 1024 * 1024
_GUID = re.compile(r"^[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$")
_CHUNK = 1024 * 1024


def mkDir(path: str | os.PathLike, mode: int | None = None) -> None:
    """``mkdir -p path``: nothing to do when it is already a directory; OSError otherwise."""
    try:
        os.makedirs(path, *(() if mode is None else (mode,)))
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def mkLink(src: str, dst: str) -> None:
    """``ln -s src dst``; already done (a link at ``dst`` to ``src``) is fine, anything else raises OSError."""
    try:
        os.symlink(src, dst)
    except OSError as exc:
        if not (exc.errno == errno.EEXIST and os.path.islink(dst) and os.path.realpath(dst) == src):
            raise


def _formatGuid(hexText: str) -> str:
    return f"{hexText[0:8]}-{hexText[8:12]}-{hexText[12:16]}-{hexText[16:20]}-{hexText[20:32]}".upper()


def generateGuid(checksum: str | None, checksumtype: str) -> str:
    """A GUID made of an ``MD5`` (32 hex digits) or ``Adler32`` checksum; a random one without a usable checksum."""
    if checksum:
        if checksumtype == "MD5":
            return _formatGuid(str(checksum))
        if checksumtype == "Adler32":
            return _formatGuid(str(checksum).zfill(32))
    return _formatGuid(secrets.token_hex(16))


def makeGuid(fileName: str | os.PathLike | None = None) -> str | None:
    """A GUID (8-4-4-4-12 upper-case hex): from the MD5 of the file's first 10 MiB, else random.

    None when the file cannot be read (as DIRAC).
    """
    if not fileName:
        return generateGuid(None, "")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(fileName, "rb") as handle:
            remaining = GUID_BYTES_READ
            while remaining and (chunk := handle.read(min(_CHUNK, remaining))):
                digest.update(chunk)
                remaining -= len(chunk)
    except OSError:
        return None
    return generateGuid(digest.hexdigest(), "MD5")


def checkGuid(guid: str) -> bool:
    """Whether ``guid`` looks like a GUID: 8-4-4-4-12 hex digits, or (as DIRAC allows) five parts of those lengths."""
    if not isinstance(guid, str):
        return False
    return bool(_GUID.match(guid.upper())) or [len(part) for part in guid.split("-")] == [8, 4, 4, 4, 12]


def getSize(fileName: str | os.PathLike) -> int:
    """The size in bytes of a file, -1 when it cannot be read."""
    try:
        return os.stat(fileName).st_size
    except (OSError, ValueError):
        return -1


def getGlobbedFiles(files: str | Sequence[str]) -> list[str]:
    """The regular files matching a glob pattern (or a list of them), directories walked (links to them not)."""
    if isinstance(files, (list, tuple)):
        return [path for entry in files for path in getGlobbedFiles(entry)]
    found: list[str] = []
    for path in sorted(glob.glob(files)):
        if os.path.isdir(path) and not os.path.islink(path):
            found += getGlobbedFiles([glob.escape(os.path.join(path, name)) for name in sorted(os.listdir(path))])
        elif os.path.isfile(path):
            found.append(path)
    return found


def getGlobbedTotalSize(files: str | Sequence[str]) -> int:
    """The total size in bytes of ``getGlobbedFiles(files)``."""
    return sum(max(getSize(path), 0) for path in getGlobbedFiles(files))


def getCommonPath(files: Sequence[str]) -> str:
    """The deepest directory holding every path (a path that is a local directory counts as itself); ``""`` for none.

    (Older DIRAC dropped the leading ``/`` of an absolute result; we keep it.)
    """
    if not files:
        return ""
    folders = [path if os.path.isdir(path) else os.path.dirname(path) for path in files]
    split = [[part for part in folder.split("/") if part] for folder in folders]
    common = split[0]
    for parts in split[1:]:
        length = 0
        while length < min(len(common), len(parts)) and common[length] == parts[length]:
            length += 1
        common = common[:length]
    prefix = "/" if all(folder.startswith("/") for folder in folders) else ""
    return prefix + "/".join(common)


def getMD5ForFiles(fileList: Sequence[str]) -> str:
    """The MD5 hex digest of the contents of the files, in sorted order of their names (directories skipped)."""
    digest = hashlib.md5(usedforsecurity=False)
    for path in sorted(fileList):
        if os.path.isdir(path):
            continue
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def convertSizeUnits(size: float | str, srcUnit: str, dstUnit: str) -> float:
    """``size`` in ``srcUnit`` expressed in ``dstUnit`` (B, kB, MB, GB, TB, PB); ``-sys.maxsize`` when impossible."""
    try:
        return float(size) * SIZE_UNIT_CONVERSION[srcUnit.upper()] / SIZE_UNIT_CONVERSION[dstUnit.upper()]
    except (TypeError, ValueError, KeyError, AttributeError):
        return -sys.maxsize


@contextlib.contextmanager
def secureOpenForWrite(filename: str | None = None, *, text: bool = True) -> Iterator[tuple[IO, str]]:
    """``with secureOpenForWrite(name) as (handle, name)``: a file only its owner can read, truncated.

    Without a name a new temporary file is made. A symbolic link at ``filename`` is
    refused (OSError) instead of followed; an existing file gets mode 600.
    """
    if filename:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(filename, flags, stat.S_IRUSR | stat.S_IWUSR)
        os.fchmod(descriptor, stat.S_IRUSR | stat.S_IWUSR)
    else:
        descriptor, filename = tempfile.mkstemp(text=text)
    with open(descriptor, "w" if text else "wb", encoding="ascii" if text else None) as handle:
        yield handle, filename

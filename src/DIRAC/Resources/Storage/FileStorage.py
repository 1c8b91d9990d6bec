"""``FileStorage``: the ``File`` plugin (protocol ``file``), a storage element on a local folder.

The folder is the ``Path`` option of the protocol section; LFN ``/vo/a/f`` is the file
``<Path>/vo/a/f`` and its URL ``file://<Host><Path>/vo/a/f`` (``file:///<Path>/...`` when
``Host`` is empty). It gives the same interface as ``S3Storage`` so that replication
between S3 and non-S3 storage can be built and tested on one machine.

Guarantees:

* A put (and a streamed copy from another SE, checked against the catalog's adler32) copies
  into a temporary file beside the destination and renames it into place: a failed put
  leaves neither a partial file nor directories it created.
* The adler32 of a file is computed while its bytes are copied and recorded in the extended
  attribute ``user.dirac.adler32`` (where the file system has them); ``getFileMetadata`` returns
  the recorded value (computing and recording it once for files that arrived another way), and
  ``getFile`` checks the bytes it copied against it, so a file changed behind our back is caught.
* Every path is resolved (symbolic links included) and must stay inside the base folder.
"""

from __future__ import annotations

import datetime
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import CHUNK_SIZE, Adler32, compareAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.StorageBase import StorageBase
from DIRAC.Resources.Storage.StreamedCopy import NOTHING_WRITTEN, CopySource, FileRange, checkCopiedAdler, reframe

CHECKSUM_XATTR = "user.dirac.adler32"
#: names of files being written by a put; hidden from listings
TMP_PREFIX = ".dirac-put-"


def _currentUmask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: permissions of new files, as ``open()`` would give them (mkstemp makes them 0600)
FILE_MODE = 0o666 & ~_currentUmask()

_ERRNO_TO_DIRAC = {
    errno.ENOENT: DErrno.ENOENT,
    errno.EACCES: DErrno.EACCES,
    errno.EPERM: DErrno.EACCES,
    errno.EROFS: DErrno.EACCES,
    errno.ENOSPC: DErrno.ENOSPC,
    errno.EDQUOT: DErrno.ENOSPC,
    errno.EISDIR: DErrno.EISDIR,
    errno.ENOTDIR: DErrno.ENOTDIR,
    errno.EEXIST: DErrno.EEXIST,
}


def _osError(action: str, what: str, exc: OSError) -> dict:
    """S_ERROR for a failed file-system call, keeping the POSIX cause."""
    code = _ERRNO_TO_DIRAC.get(exc.errno, DErrno.EIO)
    return S_ERROR(code, f"cannot {action} {what}: {exc.strerror or exc}")


def _recordedChecksum(path: str) -> str | None:
    """The adler32 recorded on ``path``, None when there is none (or no xattr support)."""
    try:
        value = os.getxattr(path, CHECKSUM_XATTR).decode("ascii", "replace").strip()
    except (OSError, AttributeError):
        return None
    return value or None


def _recordChecksum(target: int | str, checksum: str) -> None:
    """Record ``checksum`` on a file (descriptor or path); best effort."""
    try:
        os.setxattr(target, CHECKSUM_XATTR, checksum.encode("ascii"))
    except (OSError, AttributeError):
        pass


def _copyStream(source, destination=None) -> tuple[int, str]:
    """Copy ``source`` to ``destination`` (or just read it) computing adler32 in the same pass."""
    adler = Adler32()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while True:
        count = source.readinto(buffer)
        if not count:
            break
        chunk = view[:count]
        adler.update(chunk)
        if destination is not None:
            destination.write(chunk)
    return adler.size, adler.hexdigest()


class FileStorage(StorageBase):
    """Storage plugin ``File``: objects are files below the ``Path`` folder."""

    _INPUT_PROTOCOLS = ["file"]
    _OUTPUT_PROTOCOLS = ["file"]
    STREAMED_COPY_SOURCE = True
    STREAMED_COPY_DESTINATION = True

    def __init__(self, storageName: str, parameters: dict):
        super().__init__(storageName, parameters)
        self.pluginName = self.pluginName or "File"
        self.protocolName = self.protocolName or "file"
        folder = str(parameters.get("Path", ""))
        self._configError = ""
        if not folder or not os.path.isabs(folder):
            self._configError = f"SE {storageName}: File plugin needs an absolute folder as Path, got {folder!r}"
            self.isok = False
        self.baseFolder = os.path.normpath(folder) if folder else ""

    # ------------------------------------------------------------------ paths

    def _prepare(self, operation: str, items: dict[str, Any], **options: Any) -> dict:
        if self._configError:
            return S_ERROR(DErrno.ECONF, self._configError)
        return super()._prepare(operation, items, **options)

    def _path(self, lfn: str) -> dict:
        """S_OK(local path of ``lfn``) once its resolved form is inside the base folder."""
        path = os.path.join(self.baseFolder, lfn.lstrip("/")) if lfn != "/" else self.baseFolder
        realBase = os.path.realpath(self.baseFolder)
        realPath = os.path.realpath(path)
        if realPath != realBase and not realPath.startswith(realBase.rstrip("/") + "/"):
            return S_ERROR(DErrno.EPERM, f"{lfn} resolves to {realPath}, outside {realBase} of SE {self.name}")
        return S_OK(path)

    # ------------------------------------------------------------------ metadata

    def _statMetadata(self, path: str, info: os.stat_result) -> dict:
        """Normalised metadata of ``path`` (the checksum only for files)."""
        isFile = stat.S_ISREG(info.st_mode)
        readable = os.access(path, os.R_OK)
        meta = {
            "Size": info.st_size if isFile else 0,
            "ModTime": datetime.datetime.fromtimestamp(info.st_mtime, tz=datetime.UTC),
            "File": isFile,
            "Directory": stat.S_ISDIR(info.st_mode),
            "Mode": stat.S_IMODE(info.st_mode),
            "Accessible": readable,
            "Readable": readable,
            "Writeable": os.access(path, os.W_OK),
            "Executable": os.access(path, os.X_OK),
            "Lost": False,
            "Cached": True,
            "Migrated": False,
            "Unavailable": False,
        }
        if isFile:
            checksum = _recordedChecksum(path)
            if checksum is None and readable:
                checksum = self._computeChecksum(path)
            meta["Checksum"] = checksum or ""
            meta["ChecksumType"] = "ADLER32"
        return meta

    @staticmethod
    def _computeChecksum(path: str) -> str | None:
        """adler32 of a file that has none recorded; recorded for next time."""
        try:
            with open(path, "rb") as handle:
                _size, checksum = _copyStream(handle)
        except OSError:
            return None
        _recordChecksum(path, checksum)
        return checksum

    def _getMetadata(self, lfn: str, context: Any) -> dict:
        result = self._path(lfn)
        if not result["OK"]:
            return result
        path = result["Value"]
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return S_ERROR(DErrno.ENOENT, f"{lfn} does not exist on SE {self.name}")
        except OSError as exc:
            return _osError("stat", lfn, exc)
        return S_OK(self._statMetadata(path, info))

    def _exists(self, lfn: str, context: Any) -> dict:
        result = self._path(lfn)
        if not result["OK"]:
            return result
        try:
            os.stat(result["Value"])
        except (FileNotFoundError, NotADirectoryError):
            return S_OK(False)
        except OSError as exc:
            return _osError("stat", lfn, exc)
        return S_OK(True)

    # ------------------------------------------------------------------ transfers

    def _getFile(self, lfn: str, localFile: str, context: Any) -> dict:
        """Copy ``lfn`` into ``localFile``; fail when its bytes do not match the recorded adler32."""
        result = self._path(lfn)
        if not result["OK"]:
            return result
        path = result["Value"]
        if os.path.isdir(path):
            return S_ERROR(DErrno.EISDIR, f"{lfn} is a directory, not a file")
        try:
            with open(path, "rb") as source:
                expectedSize = os.fstat(source.fileno()).st_size
                recorded = _recordedChecksum(path)
                with open(localFile, "wb") as destination:
                    size, checksum = _copyStream(source, destination)
        except FileNotFoundError:
            return S_ERROR(DErrno.ENOENT, f"{lfn} does not exist on SE {self.name}")
        except OSError as exc:
            return _osError("read", lfn, exc)
        if size != expectedSize:
            return S_ERROR(DErrno.EFILESIZE, f"{lfn}: read {size} bytes, the file had {expectedSize}")
        if recorded is not None and not compareAdler(recorded, checksum):
            message = f"{lfn}: adler32 of the bytes read is {checksum}, the recorded one is {recorded}"
            return S_ERROR(DErrno.EBADCKS, message)
        return S_OK(size)

    def _putFile(self, lfn: str, localFile: str, size: int, context: Any) -> dict:
        """Copy ``localFile`` to a temporary file beside ``lfn``, record its adler32, rename it."""

        def fill(destination) -> dict:
            with open(localFile, "rb") as source:
                written, checksum = _copyStream(source, destination)
            if written != size:
                message = f"local file {localFile} changed size while copied ({size} -> {written} bytes)"
                return S_ERROR(DErrno.EFILESIZE, message)
            return S_OK(checksum)

        return self._writeAtomically(lfn, size, fill, localFile)

    def _writeCopy(self, lfn: str, source: CopySource, checksum: str) -> dict:
        """Write a streamed copy's bytes like a put: renamed into place only once their adler32 is ``checksum``."""

        def fill(destination) -> dict:
            read = source.readInto(0, source.size, destination)
            if not read["OK"]:
                return read
            matches = checkCopiedAdler(read["Value"], checksum, source)
            return S_OK(checksum) if matches["OK"] else matches

        return self._writeAtomically(lfn, source.size, fill, source.description)

    def _writeAtomically(self, lfn: str, size: int, fill: Callable[[BinaryIO], dict], origin: str) -> dict:
        """S_OK(size) once ``fill(handle) -> S_OK(adler32)`` wrote a temporary file beside ``lfn``,
        its checksum was recorded and it was renamed into place; on failure nothing is left."""
        if lfn == "/":
            return S_ERROR(DErrno.EISDIR, f"cannot put a file at the top of SE {self.name}")
        result = self._path(lfn)
        if not result["OK"]:
            return result
        path = result["Value"]
        if os.path.isdir(path):
            return S_ERROR(DErrno.EISDIR, f"{lfn} is a directory on SE {self.name}")
        created = self._makeParents(os.path.dirname(path))
        if not created["OK"]:
            return created
        temporary, done = "", False
        try:
            handle, temporary = tempfile.mkstemp(prefix=TMP_PREFIX, dir=os.path.dirname(path))
            with open(handle, "wb") as destination:
                filled = fill(destination)
                if not filled["OK"]:
                    return reframe(filled, f"cannot put {lfn}", NOTHING_WRITTEN)
                os.fchmod(destination.fileno(), FILE_MODE)
                _recordChecksum(destination.fileno(), filled["Value"])
            os.replace(temporary, path)
            done = True
            return S_OK(size)
        except OSError as exc:
            return _osError("put", f"{origin} to {lfn}", exc)
        finally:
            if not done:
                if temporary:
                    _silentUnlink(temporary)
                _removeEmptyFolders(created["Value"])

    def _openCopySource(self, lfn: str, context: Any) -> dict:
        """S_OK(CopySource) of ``lfn``, pinned by its open descriptor (and size and modification time)."""
        result = self._path(lfn)
        if not result["OK"]:
            return result
        path = result["Value"]
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
        except FileNotFoundError:
            return S_ERROR(DErrno.ENOENT, f"{lfn} does not exist on SE {self.name}")
        except OSError as exc:
            return _osError("read", lfn, exc)
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            os.close(descriptor)
            return S_ERROR(DErrno.EISDIR, f"{lfn} is not a file on SE {self.name}")
        description = f"{lfn} on SE {self.name}"
        pinned = (info.st_size, info.st_mtime_ns)

        def fetchRange(offset: int, length: int) -> dict:
            return S_OK(FileRange(descriptor, offset, length, pinned, description))

        def closeFile() -> None:
            os.close(descriptor)

        checksum = _recordedChecksum(path) or ""
        return S_OK(CopySource(description, info.st_size, checksum, fetchRange, 0, onClose=closeFile))

    def _makeParents(self, folder: str) -> dict:
        """Create ``folder`` and its missing parents; S_OK(list of folders created, deepest first)."""
        missing = []
        current = folder
        while not os.path.isdir(current) and current not in missing:
            missing.append(current)
            current = os.path.dirname(current)
        created = []
        for each in reversed(missing):
            try:
                os.mkdir(each)
            except FileExistsError:
                if not os.path.isdir(each):
                    _removeEmptyFolders(created[::-1])
                    return S_ERROR(DErrno.ENOTDIR, f"cannot create folder {each}: a file of that name exists")
                continue
            except OSError as exc:
                _removeEmptyFolders(created[::-1])
                return _osError("create folder", each, exc)
            created.append(each)
        return S_OK(created[::-1])

    def _removeFile(self, lfn: str, context: Any) -> dict:
        result = self._path(lfn)
        if not result["OK"]:
            return result
        path = result["Value"]
        if os.path.isdir(path) and not os.path.islink(path):
            return S_ERROR(DErrno.EISDIR, f"{lfn} is a directory, not a file")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return S_OK(True)
        except OSError as exc:
            return _osError("remove", lfn, exc)
        return S_OK(True)

    # ------------------------------------------------------------------ directories

    def _isDirectory(self, lfn: str, context: Any) -> dict:
        result = self._path(lfn)
        if not result["OK"]:
            return result
        return S_OK(os.path.isdir(result["Value"]))

    def _createDirectory(self, lfn: str, context: Any) -> dict:
        result = self._path(lfn)
        if not result["OK"]:
            return result
        created = self._makeParents(result["Value"])
        return S_OK(True) if created["OK"] else created

    def _listDirectory(self, lfn: str, context: Any) -> dict:
        result = self._path(lfn)
        if not result["OK"]:
            return result
        prefix = lfn.rstrip("/") + "/"
        files, subDirs = {}, []
        try:
            with os.scandir(result["Value"]) as entries:
                for entry in entries:
                    if entry.name.startswith(TMP_PREFIX):
                        continue
                    try:
                        info = entry.stat()
                    except OSError:
                        continue  # vanished or a dangling link: not an object
                    if stat.S_ISDIR(info.st_mode):
                        subDirs.append(prefix + entry.name)
                    elif stat.S_ISREG(info.st_mode):
                        files[prefix + entry.name] = self._statMetadata(entry.path, info)
        except FileNotFoundError:
            return S_ERROR(DErrno.ENOENT, f"directory {lfn} does not exist on SE {self.name}")
        except NotADirectoryError:
            return S_ERROR(DErrno.ENOTDIR, f"{lfn} is a file, not a directory")
        except OSError as exc:
            return _osError("list", lfn, exc)
        return S_OK((files, sorted(subDirs)))

    def _removeEmptyDirectory(self, lfn: str, context: Any) -> None:
        """Remove the empty folders left below (and at) ``lfn``; never the base folder."""
        result = self._path(lfn)
        if not result["OK"]:
            return
        for root, _dirs, _files in os.walk(result["Value"], topdown=False):
            if os.path.realpath(root) == os.path.realpath(self.baseFolder):
                continue
            try:
                os.rmdir(root)
            except OSError:
                pass  # not empty: something else lives there

    # ------------------------------------------------------------------ storage

    def getOccupancy(self, **kwargs: Any) -> dict:
        """S_OK({'Total': MB, 'Free': MB}) of the file system holding the base folder."""
        if self._configError:
            return S_ERROR(DErrno.ECONF, self._configError)
        try:
            info = os.statvfs(self.baseFolder)
        except OSError as exc:
            return _osError("get the occupancy of", f"SE {self.name} ({self.baseFolder})", exc)
        megabyte = 1024 * 1024
        return S_OK(
            {"Total": info.f_blocks * info.f_frsize / megabyte, "Free": info.f_bavail * info.f_frsize / megabyte}
        )


def _silentUnlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _removeEmptyFolders(folders: list[str]) -> None:
    """Remove ``folders`` (deepest first) if they are still empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return

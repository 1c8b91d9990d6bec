"""``StorageBase``: DIRAC's storage plugin interface, with the parts every plugin shares.

A plugin turns URLs into objects on one storage. This base class owns what is the
same everywhere: strict URL -> LFN mapping (a URL for another host, port or base
path, or with ``.``/``..``/empty segments, is refused, never mapped to some other
object), argument normalisation, bulk fan-out into ``{'Successful', 'Failed'}``,
safe local file handling for downloads, and the directory operations that can be
built from listing and single-file primitives. A plugin implements the
primitives (``_exists``, ``_getMetadata``, ``_getFile``, ``_putFile``,
``_removeFile``, ``_listDirectory``, ...) on one validated LFN each.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Storage import StreamedCopy
from DIRAC.Resources.Storage.Utilities import (
    DEFAULT_MAX_WORKERS,
    bulkResult,
    checkArgumentFormat,
    checkLocalSource,
    localTarget,
    runBulk,
    settledContext,
)

PROTOCOL_PARAMETERS = ["Protocol", "Host", "Path", "Port", "SpaceToken", "WSUrl"]
SECRET_PARAMETERS = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
#: LFN characters a URL must carry percent-encoded to round-trip: '%' itself, '?' and '#'
#: (a URL would end its path there) and control characters
_URL_UNSAFE = re.compile("[%?#\x00-\x1f\x7f]")


def quoteLFNForURL(lfn: str) -> str:
    """``lfn`` as a URL path: only '%', '?', '#' and control characters percent-encoded.

    Every other character stays as DIRAC writes it, so ordinary LFNs give the
    same URLs as DIRAC's; ``unquote`` gives the LFN back for any name.
    """
    return _URL_UNSAFE.sub(lambda match: f"%{ord(match.group()):02X}", lfn)


def publicParameters(parameters: dict) -> dict:
    """``parameters`` without secrets, safe to log or send over RPC."""
    return {key: value for key, value in parameters.items() if key.lower() not in SECRET_PARAMETERS}


class StorageBase:
    """Base of every storage plugin (``S3Storage``, ``FileStorage``)."""

    #: protocols this plugin can read from / write to, in preference order
    _INPUT_PROTOCOLS: list[str] = []
    _OUTPUT_PROTOCOLS: list[str] = []
    #: protocol-section options without which the plugin cannot work
    MANDATORY_PARAMETERS: tuple[str, ...] = ("Path",)
    #: items of one bulk call handled at once unless the protocol section sets MaxWorkers
    DEFAULT_WORKERS = DEFAULT_MAX_WORKERS
    #: the plugin implements a side of the streamed copy: ``_openCopySource`` / ``_writeCopy``
    STREAMED_COPY_SOURCE = False
    STREAMED_COPY_DESTINATION = False

    def __init__(self, storageName: str, parameters: dict):
        self.name = storageName
        self.parameters = dict(parameters)
        self.pluginName = parameters.get("PluginName", "")
        self.protocolName = parameters.get("Protocol", "")
        self.protocolParameters = {key: parameters.get(key, "") for key in PROTOCOL_PARAMETERS}
        self.basePath = "/" + str(parameters.get("Path", "")).strip("/")
        self.maxWorkers = _positiveInt(parameters.get("MaxWorkers"), self.DEFAULT_WORKERS)
        self.se = None
        self.log = gLogger.getSubLogger(f"{type(self).__name__}/{storageName}")
        self.isok = True

    @classmethod
    def checkParameters(cls, storageName: str, parameters: dict) -> dict:
        """S_OK when the protocol section is usable; S_ERROR naming the SE and the missing option."""
        for name in cls.MANDATORY_PARAMETERS:
            if not str(parameters.get(name, "")).strip():
                section = parameters.get("PluginName", cls.__name__)
                return S_ERROR(DErrno.ECONF, f"SE {storageName}: option {name} is missing in its {section} section")
        return S_OK()

    # ------------------------------------------------------------------ identity

    def setStorageElement(self, se: Any) -> None:
        """Remember the StorageElement that owns this plugin."""
        self.se = se

    def getParameters(self) -> dict:
        """The plugin's configuration, without secrets, plus its name and plugin."""
        return {**publicParameters(self.parameters), "StorageName": self.name, "PluginName": self.pluginName}

    @property
    def inputProtocols(self) -> list[str]:
        """Protocols of URLs this plugin can read data from (for replication)."""
        return list(self._INPUT_PROTOCOLS)

    @property
    def outputProtocols(self) -> list[str]:
        """Protocols of URLs this plugin can give out for its data."""
        return list(self._OUTPUT_PROTOCOLS)

    def getURLBase(self, withWSUrl: bool = False) -> dict:
        """S_OK(URL prefix of every object of this storage)."""
        return S_OK(self._urlBase())

    def constructURLFromLFN(self, lfn: str, withWSUrl: bool = False) -> dict:
        """S_OK(URL of ``lfn`` on this storage); S_ERROR for a malformed LFN."""
        result = checkLFN(lfn)
        if not result["OK"]:
            return result
        return S_OK(self._lfnToURL(lfn))

    def isNativeURL(self, url: str) -> dict:
        """S_OK(True) when ``url`` belongs to this storage."""
        return S_OK(self._urlToLFN(url)["OK"])

    # ------------------------------------------------------------------ URL mapping

    def _urlBase(self) -> str:
        netloc = self.protocolParameters["Host"]
        if self.protocolParameters["Port"]:
            netloc = f"{netloc}:{self.protocolParameters['Port']}"
        return f"{self.protocolName}://{netloc}{self.basePath.rstrip('/')}"

    def _lfnToURL(self, lfn: str) -> str:
        return self._urlBase() + ("" if lfn == "/" else quoteLFNForURL(lfn))

    def _urlToLFN(self, url: Any) -> dict:
        """S_OK(LFN) for a URL of this storage; S_ERROR saying exactly why not otherwise."""
        if not isinstance(url, str) or not url:
            return S_ERROR(DErrno.ETYPE, f"URL must be a non-empty string, got {url!r}")
        base = self._urlBase()
        if url.startswith(base + "/") and "?" not in url and "#" not in url:
            result = checkLFN(unquote(url[len(base) :]))  # the common case: a URL this plugin made
            return result if result["OK"] else S_ERROR(DErrno.EINVAL, f"URL {url}: {result['Message']}")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            return S_ERROR(DErrno.EINVAL, f"malformed URL {url}: {exc}")
        if parts.query or parts.fragment:
            return S_ERROR(DErrno.EINVAL, f"URL {url} must not carry a query or fragment")
        if parts.scheme != self.protocolName:
            return S_ERROR(DErrno.EWRONGSE, f"URL {url} is not a {self.protocolName} URL of SE {self.name}")
        expectedHost = str(self.protocolParameters["Host"]).lower()
        if (parts.hostname or "") != expectedHost:
            message = f"URL {url} names host {parts.hostname!r}, SE {self.name} is at {expectedHost!r}"
            return S_ERROR(DErrno.EWRONGSE, message)
        if str(port or "") != str(self.protocolParameters["Port"] or ""):
            return S_ERROR(
                DErrno.EWRONGSE, f"URL {url} names port {port}, SE {self.name} uses {self.protocolParameters['Port']}"
            )
        base = self.basePath.rstrip("/")
        if parts.path != base and not parts.path.startswith(base + "/"):
            return S_ERROR(DErrno.EWRONGSE, f"URL {url} is outside {base or '/'} of SE {self.name}")
        lfn = unquote(parts.path[len(base) :]) or "/"
        result = checkLFN(lfn)
        if not result["OK"]:
            return S_ERROR(DErrno.EINVAL, f"URL {url}: {result['Message']}")
        return S_OK(lfn)

    # ------------------------------------------------------------------ bulk machinery

    def _prepare(self, operation: str, items: dict[str, Any], **options: Any) -> dict:
        """Per-LFN context for a bulk ``operation`` on ``{lfn: value}``: S_OK({lfn: context or S_ERROR}).

        The default has nothing to prepare. A plugin that must ask a service once
        per bulk call (e.g. for presigned URLs) overrides this; a context may be a
        ``PendingContext`` (still being prepared), resolved before its item is acted on.
        """
        return S_OK(dict.fromkeys(items))

    def _mapURLs(self, urls: Any, preFailed: dict | None = None) -> dict:
        """S_OK(({url: (lfn, value)}, {url: reason})): the URLs of this storage and the others, with why."""
        result = checkArgumentFormat(urls)
        if not result["OK"]:
            return result
        failed = dict(preFailed or {})
        mapped: dict[str, tuple[str, Any]] = {}
        for url, value in result["Value"].items():
            if url in failed:
                continue
            lfnResult = self._urlToLFN(url)
            if lfnResult["OK"]:
                mapped[url] = (lfnResult["Value"], value)
            else:
                failed[url] = lfnResult["Message"]
        return S_OK((mapped, failed))

    def _fanOut(self, urls: Any, operation: str, action, preFailed: dict | None = None, **prepareOptions: Any) -> dict:
        """Run ``action(lfn, value, context) -> S_OK/S_ERROR`` for each URL in parallel.

        URLs that do not map to an LFN of this storage go to ``Failed`` with the
        reason and are never acted on.
        """
        result = self._mapURLs(urls, preFailed)
        if not result["OK"]:
            return result
        mapped, failed = result["Value"]
        contexts = self._prepare(operation, dict(mapped.values()), **prepareOptions)
        if not contexts["OK"]:
            failed.update(dict.fromkeys(mapped, contexts["Message"]))
            return bulkResult({}, failed)
        contextByLFN = contexts["Value"]

        def perURL(url: str, item: tuple[str, Any]) -> dict:
            lfn, value = item
            context = settledContext(contextByLFN.get(lfn))
            if isinstance(context, dict) and context.get("OK") is False:
                return context
            return action(lfn, value, context)

        successful, moreFailed = runBulk(mapped.items(), perURL, self.maxWorkers)
        failed.update(moreFailed)
        return bulkResult(successful, failed)

    # ------------------------------------------------------------------ files

    def exists(self, path: Any) -> dict:
        """Bulk: True when an object (or a directory) exists at each URL."""
        return self._fanOut(path, "exists", lambda lfn, _v, ctx: self._exists(lfn, ctx))

    def getFileMetadata(self, path: Any) -> dict:
        """Bulk: normalised metadata (Size, Checksum, ChecksumType, ModTime, File, Directory, Mode, Accessible)."""
        return self._fanOut(path, "getFileMetadata", self._fileMetadata)

    def _fileMetadata(self, lfn: str, _value: Any, context: Any) -> dict:
        result = self._getMetadata(lfn, context)
        if result["OK"] and not result["Value"].get("File"):
            return S_ERROR(DErrno.EISDIR, f"{lfn} is a directory, not a file")
        return result

    def isFile(self, path: Any) -> dict:
        """Bulk: True for a file, False for a directory, Failed when missing."""
        return self._fanOut(path, "getFileMetadata", self._isFile)

    def _isFile(self, lfn: str, _value: Any, context: Any) -> dict:
        result = self._getMetadata(lfn, context)
        if result["OK"]:
            return S_OK(bool(result["Value"].get("File")))
        if DErrno.cmpError(result, DErrno.ENOENT) and self._isDirectory(lfn, context).get("Value"):
            return S_OK(False)
        return result

    def getFileSize(self, path: Any) -> dict:
        """Bulk: size in bytes of each file."""
        return self._fanOut(path, "getFileMetadata", self._fileSize)

    def _fileSize(self, lfn: str, value: Any, context: Any) -> dict:
        result = self._fileMetadata(lfn, value, context)
        return S_OK(result["Value"]["Size"]) if result["OK"] else result

    def removeFile(self, path: Any) -> dict:
        """Bulk: remove each file; a file already gone counts as removed."""
        return self._fanOut(path, "removeFile", lambda lfn, _v, ctx: self._removeFile(lfn, ctx))

    def putFile(self, path: Any, sourceSize: int = 0) -> dict:
        """Bulk ``{url: localFile}``: upload each file; S_OK(size) per URL.

        The local file must exist and be a regular file; with ``sourceSize`` its
        size must match. Checksums are stored with the object.
        """
        result = checkArgumentFormat(path)
        if not result["OK"]:
            return result
        preFailed, sizes = {}, {}
        for url, localFile in result["Value"].items():
            source = checkLocalSource(localFile)
            if not source["OK"]:
                preFailed[url] = f"cannot upload to {url}: {source['Message']}"
            elif sourceSize and source["Value"] != sourceSize:
                preFailed[url] = f"local file {localFile} has {source['Value']} bytes, expected {sourceSize}"
            else:
                sizes[localFile] = source["Value"]

        def upload(lfn: str, localFile: str, context: Any) -> dict:
            return self._putFile(lfn, localFile, sizes[localFile], context)

        return self._fanOut(result["Value"], "putFile", upload, preFailed)

    def getFile(self, path: Any, localPath: str | bool = False) -> dict:
        """Bulk: download each URL into ``localPath`` (default: the current folder).

        The local name is the object's basename. Two URLs with the same basename
        in one call: the second is Failed and nothing is overwritten. A download
        goes to a temporary name and is renamed only after its checksum matched.
        """
        result = checkArgumentFormat(path)
        if not result["OK"]:
            return result
        destination = os.path.abspath(localPath or os.getcwd())
        if not os.path.isdir(destination):
            return S_ERROR(DErrno.ENOTDIR, f"local destination {destination} is not an existing folder")
        preFailed, targets, seen = {}, {}, {}
        for url in result["Value"]:
            mapped = self._urlToLFN(url)  # the name from the LFN: a URL percent-encodes some characters
            name = mapped["Value"].rstrip("/").rsplit("/", 1)[-1] if mapped["OK"] else url
            if name in seen:
                preFailed[url] = f"{name} is also the name of {seen[name]} in this call; nothing overwritten"
                continue
            seen[name] = url
            targets[url] = os.path.join(destination, name)

        def download(lfn: str, target: str, context: Any) -> dict:
            return self._downloadSafely(lfn, target, context)

        return self._fanOut({url: targets.get(url) for url in result["Value"]}, "getFile", download, preFailed)

    def _downloadSafely(self, lfn: str, target: str, context: Any) -> dict:
        """Download to a fresh hidden name beside ``target`` and rename it only when complete."""
        folder = os.path.dirname(target)
        if not os.access(folder, os.W_OK):
            return S_ERROR(DErrno.EACCES, f"cannot write into {folder}")
        partial = os.path.join(folder, f".{os.path.basename(target)}.{uuid.uuid4().hex}.part")
        renamed = False
        try:
            result = self._getFile(lfn, partial, context)
            if result["OK"]:
                os.replace(partial, target)
                renamed = True
            return result
        except OSError as exc:
            return S_ERROR(DErrno.EIO, f"cannot write {target}: {exc.strerror}")
        finally:
            if not renamed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)

    def copyStreamed(self, source: StorageBase, items: dict) -> dict[str, dict]:
        """Copy files from plugin ``source`` into this storage, streamed: no local file, bounded memory.

        ``items`` is ``{lfn: {'Size': int, 'Checksum': adler32 hex}}``, the catalog's values.
        Answers ``{lfn: S_OK(size) | S_ERROR}``. The adler32 of the bytes is computed on the
        way and compared with the catalog's before the copy is made visible here; a failure
        leaves nothing here. ``EPROTONOSUPPORT``: one of the two plugins cannot stream (the
        caller falls back to a local copy). See ``StreamedCopy``.
        """
        return StreamedCopy.copyStreamed(source, self, items)

    # ------------------------------------------------------------------ directories

    def isDirectory(self, path: Any) -> dict:
        """Bulk: True for a directory (S3: a prefix with objects below), False for a file, Failed when missing."""
        return self._fanOut(path, "listDirectory", self._directoryOrFile)

    def _directoryOrFile(self, lfn: str, _value: Any, context: Any) -> dict:
        result = self._isDirectory(lfn, context)
        if not result["OK"] or result["Value"]:
            return result
        exists = self._exists(lfn, None)
        if not exists["OK"] or exists["Value"]:
            return S_OK(False) if exists["OK"] else exists
        return S_ERROR(DErrno.ENOENT, f"{lfn} does not exist on SE {self.name}")

    def createDirectory(self, path: Any) -> dict:
        """Bulk: make each directory (a no-op success where directories are implicit)."""
        return self._fanOut(path, "createDirectory", lambda lfn, _v, ctx: self._createDirectory(lfn, ctx))

    def listDirectory(self, path: Any) -> dict:
        """Bulk: ``{'Files': {url: metadata}, 'SubDirs': {url: {}}}`` for each directory URL."""
        return self._fanOut(path, "listDirectory", self._listing)

    def _listing(self, lfn: str, _value: Any, context: Any) -> dict:
        result = self._listDirectory(lfn, context)
        if not result["OK"]:
            return result
        files, subDirs, notLFNs = _listingParts(result["Value"])
        if not files and not subDirs and not notLFNs and not self._isDirectory(lfn, context).get("Value"):
            return S_ERROR(DErrno.ENOENT, f"directory {lfn} does not exist")
        listing = {
            "Files": {self._lfnToURL(name): meta for name, meta in files.items()},
            "SubDirs": {self._lfnToURL(name): {"Directory": True} for name in subDirs},
        }
        if notLFNs:
            listing["NotLFNs"] = notLFNs
        return S_OK(listing)

    def getDirectoryMetadata(self, path: Any) -> dict:
        """Bulk: ``{'Directory': True, 'File': False, 'Exists': True, ...}`` for each directory."""
        return self._fanOut(path, "listDirectory", self._directoryMetadata)

    def _directoryMetadata(self, lfn: str, _value: Any, context: Any) -> dict:
        result = self._isDirectory(lfn, context)
        if not result["OK"]:
            return result
        if not result["Value"]:
            return S_ERROR(DErrno.ENOENT, f"directory {lfn} does not exist")
        return S_OK({"Directory": True, "File": False, "Exists": True, "Accessible": True, "Mode": 0o755})

    def getDirectorySize(self, path: Any) -> dict:
        """Bulk: ``{'Files': n, 'Size': bytes, 'SubDirs': m}`` of the files directly in each directory."""
        return self._fanOut(path, "listDirectory", self._directorySize)

    def _directorySize(self, lfn: str, value: Any, context: Any) -> dict:
        result = self._listing(lfn, value, context)
        if not result["OK"]:
            return result
        files = result["Value"]["Files"]
        size = sum(meta.get("Size", 0) for meta in files.values())
        return S_OK({"Files": len(files), "Size": size, "SubDirs": len(result["Value"]["SubDirs"])})

    def _walk(self, lfn: str, context: Any, depthLeft: int = 64) -> dict:
        """S_OK(({file LFN: metadata}, {name: why it is no LFN})) of everything below ``lfn``, bounded in depth."""
        result = self._listDirectory(lfn, context)
        if not result["OK"]:
            return result
        files, subDirs, notLFNs = _listingParts(result["Value"])
        found, odd = dict(files), dict(notLFNs)
        for subDir in subDirs:
            if depthLeft <= 0:
                return S_ERROR(DErrno.EINVAL, f"directory tree below {lfn} is deeper than the limit")
            below = self._walk(subDir, context, depthLeft - 1)
            if not below["OK"]:
                return below
            found.update(below["Value"][0])
            odd.update(below["Value"][1])
        return S_OK((found, odd))

    def removeDirectory(self, path: Any, recursive: bool = False) -> dict:
        """Bulk: remove each directory; with ``recursive`` everything below it.

        Without ``recursive`` only the files directly inside are removed, as DIRAC does.
        Answers ``{'FilesRemoved': n, 'SizeRemoved': bytes}`` per directory. A
        directory whose listing cannot be read, or where a file (or a stored name
        that cannot be an LFN) is left, is ``Failed`` with the reason.
        """

        def remove(lfn: str, _value: Any, context: Any) -> dict:
            if recursive:
                listing = self._walk(lfn, context)
            else:
                listing = self._listDirectory(lfn, context)
                if listing["OK"]:
                    files, _subDirs, notLFNs = _listingParts(listing["Value"])
                    listing = S_OK((files, notLFNs))
            if not listing["OK"]:
                return S_ERROR(listing.get("Errno", DErrno.EIO), f"cannot list {lfn}: {listing['Message']}")
            files, notLFNs = listing["Value"]
            results = self._removeFiles(list(files), context)
            failures = {name: result["Message"] for name, result in results.items() if not result["OK"]}
            removed = [name for name, result in results.items() if result["OK"]]
            size = sum(files[name].get("Size", 0) for name in removed)
            if failures or notLFNs:
                problems = [f"{name}: {reason}" for name, reason in sorted(failures.items())[:5]]
                problems += [f"{name!r} left: {reason}" for name, reason in sorted(notLFNs.items())[:5]]
                message = (
                    f"removed {len(removed)} of {len(files)} files below {lfn}; "
                    f"{len(failures) + len(notLFNs)} objects left: {'; '.join(problems)}"
                )
                return S_ERROR(DErrno.EIO, message)
            self._removeEmptyDirectory(lfn, context)
            return S_OK({"FilesRemoved": len(removed), "SizeRemoved": size})

        return self._fanOut(path, "removeDirectory", remove)

    def getDirectory(self, path: Any, localPath: str | bool = False) -> dict:
        """Bulk: download each directory tree below ``localPath``; ``{'Files': n, 'Size': bytes}``.

        Every stored name is checked before anything is written: a name that would
        land outside the destination folder (``..``, ``.``, empty segments, absolute,
        control characters: written by another tool) fails the whole directory.
        """
        destination = os.path.abspath(localPath or os.getcwd())

        def download(lfn: str, _value: Any, context: Any) -> dict:
            listing = self._walk(lfn, context)
            if not listing["OK"]:
                return listing
            notLFNs = listing["Value"][1]
            if notLFNs:
                named = "; ".join(f"{name!r} {reason}" for name, reason in sorted(notLFNs.items())[:5])
                return S_ERROR(DErrno.EINVAL, f"{lfn}: {named}; nothing downloaded")
            top = os.path.join(destination, os.path.basename(lfn.rstrip("/")))
            targets: dict[str, str] = {}
            for fileLFN in listing["Value"][0]:
                targets[fileLFN], unsafe = localTarget(top, fileLFN[len(lfn.rstrip("/")) + 1 :])
                if unsafe:
                    return S_ERROR(DErrno.EINVAL, f"{lfn}: {unsafe}; nothing downloaded")
            count, size = 0, 0
            for fileLFN, meta in sorted(listing["Value"][0].items()):
                target = targets[fileLFN]
                try:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                except OSError as exc:
                    return S_ERROR(DErrno.EACCES, f"cannot create {os.path.dirname(target)}: {exc.strerror}")
                result = self._downloadSafely(fileLFN, target, None)
                if not result["OK"]:
                    return S_ERROR(DErrno.EIO, f"got {count} files, then failed on {fileLFN}: {result['Message']}")
                count += 1
                size += meta.get("Size", 0)
            return S_OK({"Files": count, "Size": size})

        return self._fanOut(path, "getDirectory", download)

    def putDirectory(self, path: Any) -> dict:
        """Bulk ``{url: localFolder}``: upload each folder tree; ``{'Files': n, 'Size': bytes}``."""

        def upload(lfn: str, localFolder: Any, context: Any) -> dict:
            if not isinstance(localFolder, str) or not os.path.isdir(localFolder):
                return S_ERROR(DErrno.ENOTDIR, f"local folder {localFolder!r} does not exist")
            count, size = 0, 0
            for root, _dirs, names in os.walk(localFolder):
                for name in sorted(names):
                    localFile = os.path.join(root, name)
                    relative = os.path.relpath(localFile, localFolder).replace(os.sep, "/")
                    fileLFN = lfn.rstrip("/") + "/" + relative
                    if not checkLFN(fileLFN)["OK"] or not checkLocalSource(localFile)["OK"]:
                        continue
                    fileSize = os.path.getsize(localFile)
                    result = self._putFile(fileLFN, localFile, fileSize, None)
                    if not result["OK"]:
                        message = f"put {count} files, then failed on {localFile}: {result['Message']}"
                        return S_ERROR(DErrno.EIO, message)
                    count += 1
                    size += fileSize
            return S_OK({"Files": count, "Size": size})

        return self._fanOut(path, "putDirectory", upload)

    # ------------------------------------------------------------------ access

    def getTransportURL(self, path: Any, protocols: list[str] | str | bool = False) -> dict:
        """Bulk: a URL for each object in one of ``protocols``; the native one by default."""
        wanted = [protocols] if isinstance(protocols, str) else list(protocols or [self.protocolName])
        if self.protocolName not in wanted:
            message = f"SE {self.name} offers {self.protocolName}, not {', '.join(wanted)}"
            return S_ERROR(DErrno.EPROTONOSUPPORT, message)
        return self._fanOut(path, "getTransportURL", lambda lfn, _v, _c: S_OK(self._lfnToURL(lfn)))

    def getOccupancy(self, **kwargs: Any) -> dict:
        """S_OK({'Total': MB, 'Free': MB}) where the storage can tell; S_ERROR otherwise."""
        return S_ERROR(DErrno.EPROTONOSUPPORT, f"SE {self.name}: {self.pluginName} storage cannot report its occupancy")

    # ------------------------------------------------------------------ primitives

    def _exists(self, lfn: str, context: Any) -> dict:
        raise NotImplementedError

    def _getMetadata(self, lfn: str, context: Any) -> dict:
        raise NotImplementedError

    def _getFile(self, lfn: str, localFile: str, context: Any) -> dict:
        raise NotImplementedError

    def _putFile(self, lfn: str, localFile: str, size: int, context: Any) -> dict:
        raise NotImplementedError

    def _removeFile(self, lfn: str, context: Any) -> dict:
        raise NotImplementedError

    def _openCopySource(self, lfn: str, context: Any) -> dict:
        """S_OK(StreamedCopy.CopySource) to read ``lfn`` in a streamed copy (when ``STREAMED_COPY_SOURCE``)."""
        raise NotImplementedError

    def _writeCopy(self, lfn: str, source: StreamedCopy.CopySource, checksum: str) -> dict:
        """S_OK(size) once ``source``'s bytes, adler32 ``checksum``, are at ``lfn``.

        For a plugin with ``STREAMED_COPY_DESTINATION``. Nothing may become visible at ``lfn``
        before the checksum matched; a failure leaves nothing.
        """
        raise NotImplementedError

    def _removeFiles(self, lfns: list[str], context: Any) -> dict[str, dict]:
        """{lfn: S_OK/S_ERROR} removing many files; one by one unless the storage removes in bulk."""
        return {lfn: self._removeFile(lfn, context) for lfn in lfns}

    def _isDirectory(self, lfn: str, context: Any) -> dict:
        raise NotImplementedError

    def _createDirectory(self, lfn: str, context: Any) -> dict:
        raise NotImplementedError

    def _listDirectory(self, lfn: str, context: Any) -> dict:
        """S_OK(({file LFN: metadata}, [sub-directory LFN])) of one level.

        A storage that can hold names no LFN can stand for (S3 keys with ``//``
        or ``..``) adds a third item ``{stored name: why}``: they are reported,
        never mapped to some other LFN.
        """
        raise NotImplementedError

    def _removeEmptyDirectory(self, lfn: str, context: Any) -> None:
        """Remove the now empty directory itself where directories are real (best effort)."""


def _listingParts(listing: tuple) -> tuple[dict, list, dict]:
    """(files, subDirs, names that are no LFN) from a ``_listDirectory`` answer of two or three items."""
    files, subDirs, *rest = listing
    return files, subDirs, rest[0] if rest else {}


def _positiveInt(value: Any, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default

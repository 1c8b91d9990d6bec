"""Server-side copy between two SEs of one S3 service: no byte passes through the client.

A file of at most the destination's multipart threshold is one ``CopyObject``; a
bigger one is a multipart upload of the destination (its checksum metadata from
the catalog) filled by ``UploadPartCopy`` ranges in parallel (planned by
``Parts.planParts``, S3's limits), then completed. Every request pins its source
by bucket, key and the ETag its HEAD answered (``Methods``), signed by the SE's
keys or by the S3 gateway, which checks the catalog first.

The source is checked before anything is copied: its size and checksum metadata
must be the catalog's (``items``). Since moto, rclone and s3rver ignore
``x-amz-copy-source-if-match`` (AWS, MinIO and Ceph enforce it), the copy is
verified after: the destination's size and checksum metadata must be the
catalog's; a single copy of a single-part source must have the source's ETag
(the MD5 of the bytes), otherwise the source's ETag must still be the pinned one.
A copy that fails the check is removed, and the reason says so.

Outcomes follow the interface of ``StorageBase.copyStreamed``: ``EPROTONOSUPPORT``
means "not this way" (not one service, a server that cannot copy parts, a source
without checksum metadata) with nothing left at the destination; any other error
is a failure after which the copy was removed or the multipart upload aborted.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import compareAdler
from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.HttpClient import S3Response
from DIRAC.Resources.Storage.S3.Methods import COPY_PARTS_PER_CALL, checkChecksum
from DIRAC.Resources.Storage.S3.Parts import planParts
from DIRAC.Resources.Storage.S3.TransferSettings import MAX_OBJECT_SIZE
from DIRAC.Resources.Storage.S3Storage import (
    CHECKSUM_METADATA,
    PREPARED_URL_SECONDS,
    S3Storage,
    _findText,
    _isPrepared,
    _parseXML,
)
from DIRAC.Resources.Storage.StorageBase import StorageBase
from DIRAC.Resources.Storage.Utilities import runBulk, settledContext

#: S3 error codes saying the server does not do this kind of copy: another way must copy the file
_NOT_SUPPORTED_CODES = frozenset({"NotImplemented"})


def canCopy(destination: S3Storage, source: StorageBase) -> bool:
    """True when both are usable S3 SEs of one S3 service (scheme, host, port) and the same
    access key id signs for both, or neither has keys (the gateway signs)."""
    if not isinstance(source, S3Storage) or not (destination.isok and source.isok):
        return False
    mine, theirs = destination.settings, source.settings
    if (mine.scheme, mine.host, mine.port) != (theirs.scheme, theirs.host, theirs.port):
        return False
    if mine.hasKeys != theirs.hasKeys:
        return False
    return not mine.hasKeys or mine.accessKey == theirs.accessKey


@dataclass(frozen=True)
class StoredObject:
    """What a HEAD says of an object: size, ETag and adler32 checksum metadata ('' when none)."""

    size: int
    etag: str
    checksum: str

    @property
    def multipart(self) -> bool:
        """True for an object completed from parts: its ETag is not the MD5 of its bytes."""
        return "-" in self.etag


def headObject(storage: S3Storage, lfn: str, context: Any = None) -> dict:
    """S_OK(StoredObject) of ``lfn`` on ``storage``; S_ERROR (ENOENT when there is no object).

    ``context``: what ``storage._prepare`` gave for ``lfn`` (a gateway's HEAD URL, or its refusal)."""
    context = settledContext(context)
    if isinstance(context, dict) and context.get("OK") is False:
        return context
    sent = storage._send("head_object", lfn, context=context)
    if not sent["OK"]:
        return sent
    response = sent["Value"]
    if response.status != 200:
        return storage._failure(response, lfn, "get metadata of")
    return S_OK(
        StoredObject(
            int(response.headers.get("content-length", 0)),
            response.headers.get("etag", ""),
            response.userMetadata().get(CHECKSUM_METADATA, ""),
        )
    )


def sourceParams(source: S3Storage, lfn: str) -> dict[str, str]:
    """The copy parameters naming ``lfn``'s object on ``source``: its bucket and key (the gateway's own)."""
    return {"SourceBucket": source.settings.bucket, "SourceKey": source.settings.objectKey(lfn)}


def checkItem(item: Any) -> dict:
    """S_OK((size, adler32)) of a catalog entry ``{'Size': int, 'Checksum': hex}``; S_ERROR saying what is wrong."""
    if not isinstance(item, dict):
        return S_ERROR(DErrno.EINVAL, f"expected {{'Size': bytes, 'Checksum': adler32}}, got {item!r}")
    size = item.get("Size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return S_ERROR(DErrno.EINVAL, f"Size must be a number of bytes, not {size!r}")
    checksum = checkChecksum("server-side copy", item.get("Checksum"))
    return S_OK((size, checksum["Value"])) if checksum["OK"] else checksum


def _preparedHeads(storage: S3Storage, lfns: dict) -> dict:
    """{lfn: context} of HEADs on ``storage`` prepared for a whole bulk call ({} when it could not be)."""
    prepared = storage._prepare("getFileMetadata", dict.fromkeys(lfns))
    return prepared["Value"] if prepared["OK"] else {}


def _notSupported(response: S3Response) -> bool:
    return response.status == 501 or response.errorCode() in _NOT_SUPPORTED_CODES


def _inParallel(plan: list[tuple[int, int, int]], copyPart: Callable[[int, int, int], dict], workers: int) -> dict:
    """S_OK([each part's value]) of ``copyPart(number, offset, length)`` over the plan, ``workers`` at
    a time; the parts not started when one fails are skipped, S_ERROR of the first failure. Unlike
    ``Parts`` transfers, a part copy holds no buffer here: no memory budget is taken."""
    failures: list[dict] = []
    lock = threading.Lock()

    def guarded(part: tuple[int, int, int]) -> dict:
        if failures:
            return S_ERROR(DErrno.EIO, "skipped after another part failed")
        result = copyPart(*part)
        if not result["OK"]:
            with lock:
                failures.append(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(plan)))) as pool:
        results = list(pool.map(guarded, plan))
    return failures[0] if failures else S_OK([result["Value"] for result in results])


class PartURLs:
    """The part-copy URLs of one file, asked from the gateway ``COPY_PARTS_PER_CALL`` parts at a time
    when a part needs one, and asked again once older than ``PREPARED_URL_SECONDS`` (they expire)."""

    def __init__(self, ranges: dict[int, str], ask: Callable[[dict[int, str]], dict]):
        self._ranges = ranges
        self._ask = ask
        self._urls: dict[int, tuple[dict, float]] = {}
        self._lock = threading.Lock()

    def get(self, number: int) -> dict:
        """S_OK((url, headers)) of part ``number``, or why the gateway gave none."""
        with self._lock:
            held = self._urls.get(number)
            if held is None or time.monotonic() - held[1] >= PREPARED_URL_SECONDS:
                window = [part for part in sorted(self._ranges) if part >= number][:COPY_PARTS_PER_CALL]
                asked = self._ask({part: self._ranges[part] for part in window})
                if not asked["OK"]:
                    return asked
                now = time.monotonic()
                self._urls.update({part: (answer, now) for part, answer in asked["Value"].items()})
                held = self._urls.get(number, (S_ERROR(DErrno.EIO, f"no URL for part {number}"), now))
            return held[0]


class ServerSideCopy:
    """Copies files from ``source`` into ``destination``, two SEs of one S3 service (``canCopy``)."""

    def __init__(self, destination: S3Storage, source: S3Storage):
        self.destination = destination
        self.source = source
        #: per side, {lfn: the context its ``_prepare`` gave for a HEAD}; {lfn: prepared single-copy URL}
        self._heads: dict[str, dict] = {"source": {}, "destination": {}}
        self._copies: dict[str, Any] = {}

    def copy(self, items: dict) -> dict[str, dict]:
        """{lfn: S_OK(size) or S_ERROR} for ``{lfn: {'Size', 'Checksum'}}`` (the catalog's), in parallel."""
        if not isinstance(items, dict):
            return {}
        if not canCopy(self.destination, self.source):
            why = S_ERROR(
                DErrno.EPROTONOSUPPORT,
                f"no server-side copy from SE {getattr(self.source, 'name', self.source)} to SE "
                f"{self.destination.name}: not two SEs of one S3 service signed by the same keys or both by the "
                "gateway; nothing copied",
            )
            return dict.fromkeys(items, why)
        results: dict[str, dict] = {}
        valid: dict[str, tuple[int, str]] = {}
        for lfn, item in items.items():
            checked = checkLFN(lfn)
            if checked["OK"]:
                checked = checkItem(item)
            if checked["OK"] and self._sameObject(lfn):
                checked = S_ERROR(DErrno.EINVAL, "both SEs name the same object (bucket and key)")
            if checked["OK"]:
                valid[lfn] = checked["Value"]
            else:
                results[lfn] = S_ERROR(checked["Errno"], f"{self._what(lfn)}: {checked['Message']}; nothing copied")
        self._heads = {side: _preparedHeads(storage, valid) for side, storage in self._sides()}
        checked = self._inBulk(valid, lambda lfn, item: self._checkSource(lfn, *item))
        sources = {lfn: result["Value"] for lfn, result in checked.items() if result["OK"]}
        results.update({lfn: result for lfn, result in checked.items() if not result["OK"]})
        threshold = self.destination.settings.transfer.multipartThreshold
        self._prepareCopies({lfn: source for lfn, source in sources.items() if source.size <= threshold})
        results.update(self._inBulk(sources, lambda lfn, source: self.copyFile(lfn, *valid[lfn], source)))
        return results

    def _sameObject(self, lfn: str) -> bool:
        """True when ``lfn`` is one object at both SEs: a copy onto itself, whose clean-up would remove it."""
        mine, theirs = self.destination.settings, self.source.settings
        return (mine.bucket, mine.objectKey(lfn)) == (theirs.bucket, theirs.objectKey(lfn))

    def _sides(self) -> tuple[tuple[str, S3Storage], ...]:
        return (("source", self.source), ("destination", self.destination))

    def _inBulk(self, items: dict[str, Any], action: Callable[[str, Any], dict]) -> dict[str, dict]:
        """{lfn: action(lfn, value)} run in parallel (the destination's MaxWorkers), errno kept."""
        done, crashed = runBulk(items.items(), lambda lfn, value: S_OK(action(lfn, value)), self.destination.maxWorkers)
        return {**done, **{lfn: S_ERROR(DErrno.EIO, f"{self._what(lfn)}: {why}") for lfn, why in crashed.items()}}

    def _head(self, side: str, lfn: str) -> dict:
        storage = self.source if side == "source" else self.destination
        return headObject(storage, lfn, self._heads[side].get(lfn))

    def _prepareCopies(self, sources: dict[str, StoredObject]) -> None:
        """Through a gateway: the single-copy URLs of a whole bulk call, asked at once (one call per 1,000)."""
        if not self.destination.signer.batchesRequests:
            return  # keys sign each request as it goes
        key = self.destination.settings.objectKey
        asked = {lfn: (key(lfn), self._sourceParams(lfn, source)) for lfn, source in sources.items()}
        authorised = self.destination.signer.authoriseCopies("copy_object", self.source.name, asked) if asked else None
        preparedAt = time.monotonic()
        if authorised and authorised["OK"]:
            self._copies = {
                lfn: ("copy_object", result["Value"], preparedAt) if result["OK"] else result
                for lfn, result in authorised["Value"].items()
            }

    def _what(self, lfn: str) -> str:
        return f"server-side copy of {lfn} from SE {self.source.name} to SE {self.destination.name}"

    def _fail(self, lfn: str, failure: dict, outcome: str) -> dict:
        """S_ERROR keeping ``failure``'s errno, naming the copy and what was left (``outcome``)."""
        return S_ERROR(failure.get("Errno") or DErrno.EIO, f"{self._what(lfn)}: {failure['Message']}; {outcome}")

    def _checkSource(self, lfn: str, size: int, checksum: str) -> dict:
        """S_OK(StoredObject) of the source when it is the catalog's file; S_ERROR, nothing copied, otherwise."""
        head = self._head("source", lfn)
        if not head["OK"]:
            return self._fail(lfn, head, "nothing copied")
        source: StoredObject = head["Value"]
        if not source.checksum:
            return S_ERROR(
                DErrno.EPROTONOSUPPORT,
                f"{self._what(lfn)}: the source object carries no checksum metadata, a copy could not be "
                "verified on the server; nothing copied",
            )
        if source.size != size or not compareAdler(source.checksum, checksum):
            return S_ERROR(
                DErrno.EBADCKS,
                f"{self._what(lfn)}: the source object has {source.size} bytes and checksum {source.checksum}, "
                f"the catalog says {size} bytes and {checksum}; nothing copied",
            )
        return head

    def copyFile(self, lfn: str, size: int, checksum: str, source: StoredObject) -> dict:
        """S_OK(size) once ``lfn`` (checked: ``source``) is copied and verified; else S_ERROR, nothing left."""
        if size <= self.destination.settings.transfer.multipartThreshold:
            return self._copyWhole(lfn, size, checksum, source)
        return self._copyInParts(lfn, size, checksum, source)

    # ------------------------------------------------------------------ requests

    def _sourceParams(self, lfn: str, source: StoredObject) -> dict:
        return {**sourceParams(self.source, lfn), "SourceETag": source.etag}

    def _authorise(self, s3Method: str, lfn: str, params: dict) -> dict:
        """S_OK((url, headers)) of one copy request whose ``params`` name the pinned source
        (the URL prepared for the bulk call while it is fresh)."""
        prepared = self._copies.pop(lfn, None) if s3Method == "copy_object" else None
        if _isPrepared(prepared, s3Method):
            return S_OK(prepared[1])
        if isinstance(prepared, dict) and not prepared["OK"]:
            return prepared
        key = self.destination.settings.objectKey(lfn)
        authorised = self.destination.signer.authoriseCopies(s3Method, self.source.name, {lfn: (key, params)})
        return authorised["Value"][lfn] if authorised["OK"] else authorised

    def _copyWhole(self, lfn: str, size: int, checksum: str, source: StoredObject) -> dict:
        authorised = self._authorise("copy_object", lfn, self._sourceParams(lfn, source))
        if not authorised["OK"]:
            return self._fail(lfn, authorised, "nothing copied")
        sent = self.destination.http.send("PUT", *authorised["Value"])
        if not sent["OK"]:
            return self._settle(lfn, size, checksum, source, True, f"the copy got no answer ({sent['Message']})")
        response = sent["Value"]
        if response.status == 412 and response.attempts > 1:
            # an earlier attempt may have landed, its answer lost; If-None-Match refused the resend
            return self._settle(lfn, size, checksum, source, True, "the resent copy was refused")
        if not response.ok:
            if _notSupported(response):
                return S_ERROR(DErrno.EPROTONOSUPPORT, f"{self._what(lfn)}: the server does not copy; nothing copied")
            if response.status >= 500:
                # a server error may come after the copy was applied
                failure = self.destination._failure(response, lfn, "copy into")["Message"]
                return self._settle(lfn, size, checksum, source, True, f"the copy failed ({failure})")
            if response.status == 412:
                return S_ERROR(
                    DErrno.EEXIST,
                    f"{self._what(lfn)}: refused by the server, the source changed since it was checked or the "
                    "destination exists already; nothing copied",
                )
            return self._fail(lfn, self.destination._failure(response, lfn, "copy into"), "nothing copied")
        return self._verify(lfn, size, checksum, source, single=True)

    def _copyInParts(self, lfn: str, size: int, checksum: str, source: StoredObject) -> dict:
        if size > MAX_OBJECT_SIZE:
            return S_ERROR(DErrno.EFBIG, f"{self._what(lfn)}: {size} bytes, over S3's 5 TiB; nothing copied")
        self.destination._abortEarlierUploads(lfn)  # what a killed earlier copy of this file left open
        started = self.destination._startMultipartUpload(lfn, checksum)
        if not started["OK"]:
            return self._fail(lfn, started, "nothing copied")
        uploadId = started["Value"]
        pinned = {**self._sourceParams(lfn, source), "UploadId": uploadId}
        transfer = self.destination.settings.transfer
        plan = planParts(size, transfer.partSize)
        ranges = {number: f"bytes={offset}-{offset + length - 1}" for number, offset, length in plan}
        windows = self._partWindows(lfn, pinned, ranges) if self.destination.signer.batchesRequests else None

        def copyPart(number: int, offset: int, length: int) -> dict:
            if windows is not None:
                authorised = windows.get(number)
            else:
                params = {**pinned, "PartNumber": number, "SourceRange": ranges[number]}
                authorised = self._authorise("upload_part_copy", lfn, params)
            if not authorised["OK"]:
                return authorised
            sent = self.destination.http.send("PUT", *authorised["Value"])
            if not sent["OK"]:
                return sent
            response = sent["Value"]
            if not response.ok:
                if _notSupported(response):
                    return S_ERROR(DErrno.EPROTONOSUPPORT, "the server does not copy parts")
                return self.destination._failure(response, lfn, f"copy part {number} into")
            try:
                etag = _findText(_parseXML(response.body), "ETag")
            except ElementTree.ParseError:
                etag = ""
            if not etag:
                return S_ERROR(DErrno.EPROTONOSUPPORT, f"the server answered part copy {number} without an ETag")
            return S_OK({"PartNumber": number, "ETag": etag})

        copied = _inParallel(plan, copyPart, transfer.partWorkers)
        if not copied["OK"]:
            aborted = self.destination.abortMultipartUpload(lfn, uploadId)
            outcome = "the multipart upload was aborted" if aborted["OK"] else f"aborting failed: {aborted['Message']}"
            return self._fail(lfn, copied, outcome)
        completed = self.destination._completeMultipartUpload(lfn, uploadId, copied["Value"])
        if not completed["OK"]:
            # the upload was aborted; an answer lost after the completion landed leaves an object: settle it
            return self._settle(lfn, size, checksum, source, False, f"completing failed ({completed['Message']})")
        return self._verify(lfn, size, checksum, source, single=False)

    def _partWindows(self, lfn: str, pinned: dict, ranges: dict[int, str]) -> PartURLs:
        key = self.destination.settings.objectKey(lfn)

        def ask(window: dict[int, str]) -> dict:
            return self.destination.signer.authoriseCopyParts(self.source.name, lfn, key, pinned, window)

        return PartURLs(ranges, ask)

    # ------------------------------------------------------------------ verification

    def _settle(self, lfn: str, size: int, checksum: str, source: StoredObject, single: bool, cause: str) -> dict:
        """After a copy whose outcome is unknown: S_OK(size) when the destination holds the verified copy,
        else S_ERROR naming ``cause``, the destination removed if anything is there."""
        held = self._head("destination", lfn)
        if not held["OK"] and DErrno.cmpError(held, DErrno.ENOENT):
            return S_ERROR(DErrno.EIO, f"{self._what(lfn)}: {cause}; nothing is at the destination")
        return self._verify(lfn, size, checksum, source, single, cause, held)

    def _verify(
        self,
        lfn: str,
        size: int,
        checksum: str,
        source: StoredObject,
        single: bool,
        cause: str = "",
        held: dict | None = None,
    ) -> dict:
        """S_OK(size) when the destination holds the catalog's size and checksum and the pinned source's
        bytes; otherwise the destination object is removed and S_ERROR says why. ``held``: the
        destination's HEAD when it was just asked."""
        problem = self._problem(lfn, size, checksum, source, single, held or self._head("destination", lfn))
        if not problem:
            return S_OK(size)
        removed = self.destination._removeFile(lfn, None)
        outcome = "the copy was removed" if removed["OK"] else f"the copy could NOT be removed: {removed['Message']}"
        because = f"{cause}, then " if cause else ""
        return S_ERROR(DErrno.EBADCKS, f"{self._what(lfn)}: {because}{problem}; {outcome}")

    def _problem(self, lfn: str, size: int, checksum: str, source: StoredObject, single: bool, held: dict) -> str:
        """'' when the copy (``held``: its HEAD) is right, else what is wrong with it."""
        if not held["OK"]:
            return f"the copy cannot be checked ({held['Message']})"
        copy: StoredObject = held["Value"]
        if copy.size != size:
            return f"the copy has {copy.size} bytes, the catalog says {size}"
        if not compareAdler(copy.checksum, checksum):
            return f"the copy's checksum metadata is {copy.checksum!r}, the catalog says {checksum}"
        if single and not source.multipart:
            if copy.etag != source.etag:
                return f"the copy's ETag {copy.etag} is not the source's {source.etag}: the source changed meanwhile"
            return ""
        again = self._head("source", lfn)
        if not again["OK"]:
            return f"the source cannot be checked again ({again['Message']})"
        if again["Value"].etag != source.etag:
            return f"the source changed during the copy (ETag {source.etag}, now {again['Value'].etag})"
        return ""

"""Moving one big object as parallel parts, with adler32 computed in the same pass.

Each part is read (or written) once by the worker that moves it; its adler32 is
computed on those bytes, and the parts' checksums are combined in order at the
end. An upload whose object must carry its adler32 from the start reads the file
twice: ``digestParts`` first (parts hashed in parallel threads: zlib and hashlib
release the GIL), then ``uploadParts`` sends each part after checking that its
CRC32 is still the one of the first pass (a cheap hash: a changed file is refused,
the object's adler32 stays the one of the bytes sent). A downloaded range
whose body breaks is resumed from the byte reached. A process-wide budget
bounds the part buffers held in memory, however many big files a bulk call
moves at once. The plan respects S3's limits: the part
size grows (as s3transfer's ``ChunksizeAdjuster`` does) until the file fits in
10,000 parts of at most 5 GiB.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import Adler32, adlerCombine
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.HttpClient import TransferInterrupted
from DIRAC.Resources.Storage.S3.Methods import bytesContentMD5, contentMD5
from DIRAC.Resources.Storage.S3.TransferSettings import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE

#: part buffers allowed in memory at once in this process (x part size)
_bufferBudget = threading.BoundedSemaphore(10)
#: bytes read at a time by the first pass over a part (its memory per thread)
DIGEST_CHUNK = 4 * 1024 * 1024
#: objects up to this size are received into memory, checked, then written in one go
SMALL_BODY = 1024 * 1024


@dataclass(frozen=True)
class PartDigest:
    """What the first pass found in one part: adler32, CRC32 and, when asked, the ``Content-MD5``."""

    adler: int
    length: int
    crc32: int
    contentMD5: str = ""

    @property
    def checksumCRC32(self) -> str:
        """The ``x-amz-checksum-crc32`` header value: base64 of the CRC32's 4 big-endian bytes."""
        return base64.b64encode(self.crc32.to_bytes(4, "big")).decode()


class ChecksummingReader:
    """A file read from its start, at most ``limit`` bytes, its adler32 computed as it is read.

    Given as a request body, it streams a single PUT from the file (no whole-file read);
    ``seek(0)`` starts again from the beginning (a retried request), checksum included.
    """

    def __init__(self, path: str, limit: int):
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by close(), after the request
        self._limit = limit
        self.seek(0)

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise OSError("a checksumming reader only goes back to its start")
        self._handle.seek(0)
        self._left, self._adler = self._limit, Adler32()
        return 0

    @property
    def size(self) -> int:
        """Bytes read since the start."""
        return self._adler.size

    def tell(self) -> int:
        return self.size

    def read(self, amount: int = -1) -> bytes:
        amount = self._left if amount is None or amount < 0 else min(amount, self._left)
        data = self._handle.read(amount) if amount else b""
        self._left -= len(data)
        self._adler.update(data)
        return data

    def hexdigest(self) -> str:
        return self._adler.hexdigest()

    def close(self) -> None:
        self._handle.close()


def adjustPartSize(size: int, partSize: int) -> int:
    """``partSize`` brought within 5 MiB..5 GiB, doubled until ``size`` fits in 10,000 parts.

    A file that does not fit even then (over 5 TiB... the caller refuses it first)
    gets the largest part size.
    """
    adjusted = min(max(partSize, MIN_PART_SIZE), MAX_PART_SIZE)
    while -(-size // adjusted) > MAX_PARTS and adjusted < MAX_PART_SIZE:
        adjusted = min(adjusted * 2, MAX_PART_SIZE)
    return adjusted


def spreadPartSize(size: int, partSize: int, workers: int) -> int:
    """The part size for moving ``size`` bytes with ``workers`` threads: ``partSize`` at most, smaller
    (down to S3's 5 MiB) when that gives every worker a part (64 MiB in 16 MiB parts would keep 4 of 10
    workers busy; in 6.4 MiB parts all 10)."""
    return min(partSize, max(MIN_PART_SIZE, -(-size // max(workers, 1))))


def planParts(size: int, partSize: int) -> list[tuple[int, int, int]]:
    """[(partNumber, offset, length)] covering ``size`` bytes (S3 part numbers start at 1)."""
    step = adjustPartSize(size, partSize)
    return [(index + 1, offset, min(step, size - offset)) for index, offset in enumerate(range(0, size, step))]


def _combine(partResults: list[tuple[int, int]]) -> int:
    """Combine [(adler, length)] in order into the whole object's adler32."""
    total = 1
    for adler, length in partResults:
        total = adlerCombine(total, adler, length)
    return total


def _runParts(plan: list[tuple[int, int, int]], movePart: Callable[[int, int, int], dict], workers: int) -> dict:
    """Run ``movePart`` over the plan in parallel; stop at the first failure."""
    failure: list[dict] = []

    def guarded(part: tuple[int, int, int]) -> dict:
        if failure:
            return S_ERROR(DErrno.EIO, "cancelled after another part failed")
        with _bufferBudget:
            result = movePart(*part)
        if not result["OK"]:
            failure.append(result)
        return result

    with ThreadPoolExecutor(max_workers=min(workers, len(plan)) or 1) as pool:
        results = list(pool.map(guarded, plan))
    if failure:
        return failure[0]
    return S_OK([result["Value"] for result in results])


def digestParts(localFile: str, size: int, partSize: int, workers: int, withMD5: bool) -> dict:
    """The first pass over a file to upload in parts: S_OK((adler32 int of the file, {partNumber: PartDigest})).

    Parts are read ``DIGEST_CHUNK`` at a time by ``workers`` threads (at most one per core
    is useful: hashing is all they do); ``withMD5`` adds each part's ``Content-MD5``.
    """
    try:
        descriptor = os.open(localFile, os.O_RDONLY)
    except OSError as exc:
        return S_ERROR(DErrno.EACCES, f"cannot open {localFile}: {exc.strerror}")
    try:

        def digestPart(number: int, offset: int, length: int) -> dict:
            adler, crc, md5, done = 1, 0, hashlib.md5() if withMD5 else None, 0
            while done < length:
                chunk = os.pread(descriptor, min(DIGEST_CHUNK, length - done), offset + done)
                if not chunk:
                    return S_ERROR(DErrno.EIO, f"{localFile} changed size while being read")
                adler, crc = zlib.adler32(chunk, adler), zlib.crc32(chunk, crc)
                if md5 is not None:
                    md5.update(chunk)
                done += len(chunk)
            md5Value = contentMD5(md5.digest()) if md5 is not None else ""
            return S_OK((number, PartDigest(adler, length, crc, md5Value)))

        threads = min(workers, os.cpu_count() or 1)
        result = _runParts(planParts(size, partSize), digestPart, threads)
    finally:
        os.close(descriptor)
    if not result["OK"]:
        return result
    digests = dict(result["Value"])
    return S_OK((_combine([(digest.adler, digest.length) for digest in digests.values()]), digests))


def uploadParts(
    localFile: str,
    size: int,
    partSize: int,
    sendPart: Callable[[int, bytes, str], dict],
    workers: int,
    digests: dict[int, PartDigest],
) -> dict:
    """Read and send each part once; S_OK(([{'PartNumber', 'ETag'}], adler32 int)).

    ``sendPart(partNumber, data, contentMD5) -> S_OK(etag)``. With the ``digests`` of a
    first pass (``digestParts``) only the part's CRC32 is computed again: a part whose
    CRC32 changed since is refused (EBADCKS, nothing sent), and ``sendPart`` gets the
    first pass's ``contentMD5`` ('' when it computed none).
    """
    try:
        descriptor = os.open(localFile, os.O_RDONLY)
    except OSError as exc:
        return S_ERROR(DErrno.EACCES, f"cannot open {localFile}: {exc.strerror}")
    try:

        def movePart(number: int, offset: int, length: int) -> dict:
            data = os.pread(descriptor, length, offset)
            if len(data) != length:
                return S_ERROR(DErrno.EIO, f"{localFile} changed size while being uploaded")
            if zlib.crc32(data) != digests[number].crc32:
                return S_ERROR(DErrno.EBADCKS, f"{localFile} changed while being uploaded")
            sent = sendPart(number, data, digests[number].contentMD5)
            if not sent["OK"]:
                return sent
            return S_OK(({"PartNumber": number, "ETag": sent["Value"]}, digests[number].adler, length))

        return _sendAll(size, partSize, movePart, workers)
    finally:
        os.close(descriptor)


def _sendAll(size: int, partSize: int, movePart: Callable[[int, int, int], dict], workers: int) -> dict:
    """Run ``movePart`` (S_OK((part entry, adler32, length))) on every planned part;
    S_OK(([{'PartNumber', 'ETag'}] in order, combined adler32 int))."""
    result = _runParts(planParts(size, partSize), movePart, workers)
    if not result["OK"]:
        return result
    parts = [part for part, _adler, _length in result["Value"]]
    return S_OK((parts, _combine([(adler, length) for _part, adler, length in result["Value"]])))


def receiveBody(response, offset: int, length: int, handle, refetch: Callable[[int, int], dict], resumes: int) -> dict:
    """Write ``length`` bytes of an object, from ``offset``, out of ``response`` into ``handle``.

    ``handle`` is positioned at ``offset``. When the body breaks or stalls, the rest is asked
    again with ``refetch(nextOffset, remainingLength) -> S_OK(streamed S3Response)`` and
    written on, at most ``resumes`` times (s3transfer's ``GetObjectTask`` does the same).
    S_OK(adler32 int of the bytes written).
    """
    adler, received, resumed = 1, 0, 0
    while True:
        try:
            for chunk in response.chunks():
                if received + len(chunk) > length:
                    response.abandon()
                    return S_ERROR(DErrno.EFILESIZE, f"server sent more than the {length} bytes asked at {offset}")
                adler = zlib.adler32(chunk, adler)
                handle.write(chunk)
                received += len(chunk)
        except TransferInterrupted as exc:
            if resumed >= resumes:
                tried = f" (resumed {resumed} time{'s' if resumed != 1 else ''})" if resumed else ""
                return S_ERROR(DErrno.EIO, f"{exc}{tried}")
            resumed += 1
            again = refetch(offset + received, length - received)
            if not again["OK"]:
                return S_ERROR(again.get("Errno", DErrno.EIO), f"{exc}; resuming failed: {again['Message']}")
            response = again["Value"]
            continue
        except OSError as exc:
            response.abandon()
            return S_ERROR(DErrno.EIO, f"cannot write {handle.name}: {exc.strerror or exc}")
        if received != length:
            return S_ERROR(DErrno.EFILESIZE, f"got {received} of {length} bytes at offset {offset}")
        return S_OK(adler)


def receiveWhole(response, length: int, refetch: Callable[[int, int], dict], resumes: int) -> dict:
    """S_OK((bytes of a small body, its adler32 int)), received into memory (``length`` at most
    ``SMALL_BODY``) and resumed like ``receiveBody``: the caller checks them before any file exists."""
    buffer = io.BytesIO()
    received = receiveBody(response, 0, length, buffer, refetch, resumes)
    return S_OK((buffer.getbuffer(), received["Value"])) if received["OK"] else received


def downloadParts(
    localFile: str, size: int, partSize: int, fetchRange: Callable[[int, int], dict], resumes: int, workers: int
) -> dict:
    """Fetch byte ranges in parallel into ``localFile``; S_OK(adler32 int of the whole file).

    ``fetchRange(offset, length) -> S_OK(streamed S3Response)``. A range whose body breaks
    is resumed where it stopped (``receiveBody``), without failing the other ranges.
    """
    try:
        with open(localFile, "wb") as handle:
            handle.truncate(size)
    except OSError as exc:
        return S_ERROR(DErrno.EACCES, f"cannot write {localFile}: {exc.strerror}")

    def movePart(_number: int, offset: int, length: int) -> dict:
        fetched = fetchRange(offset, length)
        if not fetched["OK"]:
            return fetched
        with open(localFile, "r+b") as handle:
            handle.seek(offset)
            received = receiveBody(fetched["Value"], offset, length, handle, fetchRange, resumes)
        return S_OK((received["Value"], length)) if received["OK"] else received

    result = _runParts(planParts(size, partSize), movePart, workers)
    return S_OK(_combine(result["Value"])) if result["OK"] else result


def sendParts(
    size: int,
    partSize: int,
    readPart: Callable[[int, int], dict],
    sendPart: Callable[[int, bytes, str], dict],
    workers: int,
) -> dict:
    """Fetch each part once and send it: a multipart upload fed by another storage (a streamed copy).

    ``readPart(offset, length) -> S_OK(bytes-like of that length)``; ``sendPart(partNumber,
    data, contentMD5) -> S_OK(etag)`` as for ``uploadParts``: the part's MD5 and adler32 are
    computed on the bytes fetched. At most ``workers`` parts (and the process-wide budget)
    are held in memory at once. S_OK(([{'PartNumber', 'ETag'}], adler32 int)).
    """

    def movePart(number: int, offset: int, length: int) -> dict:
        read = readPart(offset, length)
        if not read["OK"]:
            return read
        data = read["Value"]
        sent = sendPart(number, data, bytesContentMD5(data))
        if not sent["OK"]:
            return sent
        return S_OK(({"PartNumber": number, "ETag": sent["Value"]}, zlib.adler32(data), length))

    return _sendAll(size, partSize, movePart, workers)

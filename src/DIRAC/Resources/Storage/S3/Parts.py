"""Moving one big object as parallel parts, with adler32 computed in the same pass.

Each part is read (or written) once by the worker that moves it; its adler32 is
computed on those bytes, and the parts' checksums are combined in order at the
end. A process-wide budget bounds the part buffers held in memory, however many
big files a bulk call moves at once.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import adlerCombine
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Methods import bytesContentMD5

PART_WORKERS = 10
#: part buffers allowed in memory at once in this process (x part size)
_bufferBudget = threading.BoundedSemaphore(10)


def planParts(size: int, partSize: int) -> list[tuple[int, int, int]]:
    """[(partNumber, offset, length)] covering ``size`` bytes (S3 part numbers start at 1)."""
    return [(index + 1, offset, min(partSize, size - offset)) for index, offset in enumerate(range(0, size, partSize))]


def _combine(partResults: list[tuple[int, int]]) -> int:
    """Combine [(adler, length)] in order into the whole object's adler32."""
    total = 1
    for adler, length in partResults:
        total = adlerCombine(total, adler, length)
    return total


def _runParts(plan: list[tuple[int, int, int]], movePart: Callable[[int, int, int], dict]) -> dict:
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

    with ThreadPoolExecutor(max_workers=min(PART_WORKERS, len(plan)) or 1) as pool:
        results = list(pool.map(guarded, plan))
    if failure:
        return failure[0]
    return S_OK([result["Value"] for result in results])


def uploadParts(localFile: str, size: int, partSize: int, sendPart: Callable[[int, bytes, str], dict]) -> dict:
    """Read and send each part once; S_OK(([{'PartNumber', 'ETag'}], adler32 int)).

    ``sendPart(partNumber, data, contentMD5) -> S_OK(etag)``: the part's MD5 (base64,
    for its ``Content-MD5`` header) is computed on the bytes read, like its adler32.
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
            sent = sendPart(number, data, bytesContentMD5(data))
            if not sent["OK"]:
                return sent
            return S_OK(({"PartNumber": number, "ETag": sent["Value"]}, zlib.adler32(data), length))

        result = _runParts(planParts(size, partSize), movePart)
    finally:
        os.close(descriptor)
    if not result["OK"]:
        return result
    parts = [part for part, _adler, _length in result["Value"]]
    return S_OK((parts, _combine([(adler, length) for _part, adler, length in result["Value"]])))


def downloadParts(localFile: str, size: int, partSize: int, fetchRange: Callable[[int, int], dict]) -> dict:
    """Fetch byte ranges in parallel into ``localFile``; S_OK(adler32 int of the whole file).

    ``fetchRange(offset, length) -> S_OK(streamed S3Response)``.
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
        response, adler, received = fetched["Value"], 1, 0
        with open(localFile, "r+b") as handle:
            handle.seek(offset)
            for chunk in response.chunks():
                received += len(chunk)
                if received > length:
                    response.abandon()
                    return S_ERROR(DErrno.EFILESIZE, f"server sent more than the {length} bytes asked at {offset}")
                adler = zlib.adler32(chunk, adler)
                handle.write(chunk)
        if received != length:
            return S_ERROR(DErrno.EFILESIZE, f"got {received} of {length} bytes at offset {offset}")
        return S_OK((adler, length))

    result = _runParts(planParts(size, partSize), movePart)
    return S_OK(_combine(result["Value"])) if result["OK"] else result

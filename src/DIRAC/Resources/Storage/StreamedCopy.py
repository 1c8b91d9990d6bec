"""Streamed copy: the bytes of a file go from one storage's reads into another's write.

No local file, bounded memory. Two small seams, each plugin implements them:

* source side, ``plugin._openCopySource(lfn, context) -> S_OK(CopySource)``: the object's
  size, its stored checksum and a version pin (S3: the ETag, sent as ``If-Match`` with
  every range read; File: the open file), and reads of byte ranges whose broken bodies are
  resumed from the byte reached (``Parts.receiveBody``);
* destination side, ``plugin._writeCopy(lfn, source, checksum) -> S_OK(size)``: writes
  ``source``'s bytes and makes them visible only after their adler32 matched the catalog's
  (S3: before the single PUT or before CompleteMultipartUpload; File: before the rename).

``copyStreamed`` checks the items, opens each source, compares its size and stored
checksum with the catalog's before anything is written, and hands it to the destination.
A plugin says which seams it has (``STREAMED_COPY_SOURCE``, ``STREAMED_COPY_DESTINATION``); a
copy it cannot take part in answers ``EPROTONOSUPPORT`` before any I/O (the caller falls back
to a local copy).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import compareAdler, hexAdlerToInt, intAdlerToHex
from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.HttpClient import READ_CHUNK, TransferInterrupted
from DIRAC.Resources.Storage.S3.Parts import receiveBody
from DIRAC.Resources.Storage.S3.TransferSettings import MiB
from DIRAC.Resources.Storage.Utilities import runBulk, settledContext

NOTHING_WRITTEN = "nothing was written"
#: the largest object a streamed copy holds whole in memory (to check it before one PUT);
#: a larger one goes in parts, each held once
MAX_BUFFERED_OBJECT = 64 * MiB
#: bytes of whole objects held in memory at once by the streamed copies of this process
OBJECT_BUFFER_BUDGET = 256 * MiB


class ByteBudget:
    """A process-wide limit on the bytes of buffers held at once; a request waits until it fits."""

    def __init__(self, limit: int):
        self._limit = limit
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def buffer(self, length: int) -> Iterator[bytearray]:
        """A buffer of ``length`` bytes (at most the limit), counted while it is held."""
        if length > self._limit:
            raise ValueError(f"a {length}-byte buffer is over the {self._limit}-byte budget")
        with self._changed:
            self._changed.wait_for(lambda: self._used + length <= self._limit)
            self._used += length
        try:
            yield bytearray(length)
        finally:
            with self._changed:
                self._used -= length
                self._changed.notify_all()


_objectBuffers = ByteBudget(OBJECT_BUFFER_BUDGET)


def objectBuffer(length: int):
    """A buffer for a whole object of ``length`` bytes (at most ``MAX_BUFFERED_OBJECT``), held within
    the process's ``OBJECT_BUFFER_BUDGET``: many small copies run at once, big ones wait their turn."""
    return _objectBuffers.buffer(length)


class BufferWriter:
    """A file-like sink filling a preallocated buffer in order (a part, or a whole small object)."""

    def __init__(self, buffer: bytearray, name: str):
        self._view = memoryview(buffer)
        self.name = name
        self.position = 0

    def write(self, chunk: bytes) -> int:
        end = self.position + len(chunk)
        if end > len(self._view):
            raise OSError(f"{len(chunk)} bytes do not fit at {self.position} of a {len(self._view)}-byte buffer")
        self._view[self.position : end] = chunk
        self.position = end
        return len(chunk)


class FileRange:
    """A byte range of an open local file, read like a streamed S3 answer (``chunks``, ``abandon``).

    The file is pinned by its open descriptor; if its size or modification time is no
    longer what it was when opened, the read stops with the reason.
    """

    def __init__(self, descriptor: int, offset: int, length: int, pinned: tuple[int, int], description: str):
        self._descriptor = descriptor
        self._offset = offset
        self._length = length
        self._pinned = pinned
        self._description = description

    def chunks(self, size: int = READ_CHUNK):
        """The range's bytes in chunks of at most ``size`` bytes."""
        position, end = self._offset, self._offset + self._length
        while position < end:
            try:
                chunk = os.pread(self._descriptor, min(size, end - position), position)
                info = os.fstat(self._descriptor)
            except OSError as exc:
                raise TransferInterrupted(f"cannot read {self._description}: {exc.strerror or exc}") from exc
            if (info.st_size, info.st_mtime_ns) != self._pinned:
                raise TransferInterrupted(f"{self._description} changed while being copied")
            if not chunk:
                return
            position += len(chunk)
            yield chunk

    def abandon(self) -> None:
        """Nothing to release: the descriptor belongs to the ``CopySource``."""


class CopySource:
    """One object opened for a streamed copy: size, stored checksum, and reads of byte ranges.

    ``fetchRange(offset, length) -> S_OK(stream)`` gives a range as a stream with
    ``chunks()`` and ``abandon()`` (a streamed ``S3Response``, a ``FileRange``), pinned to
    the version opened; a stream that breaks is fetched again from the byte reached, at
    most ``resumes`` times. ``first`` is a stream of the whole object already open (S3:
    the answer to the GET that opened it), used when the whole object is read at once.
    """

    def __init__(
        self,
        description: str,
        size: int,
        checksum: str,
        fetchRange: Callable[[int, int], dict],
        resumes: int,
        first: Any = None,
        onClose: Callable[[], None] | None = None,
    ):
        self.description = description
        self.size = size
        self.checksum = checksum
        self._fetchRange = fetchRange
        self._resumes = resumes
        self._first = first
        self._firstLock = threading.Lock()  # parts are read by several threads
        self._onClose = onClose

    def _takeFirst(self) -> Any:
        """The open whole-object answer, to one caller only (None once taken)."""
        with self._firstLock:
            first, self._first = self._first, None
        return first

    def _open(self, offset: int, length: int) -> dict:
        first = self._takeFirst()
        if first is not None:
            if offset == 0 and length == self.size:
                return S_OK(first)
            first.abandon()
        return self._fetchRange(offset, length)

    def readInto(self, offset: int, length: int, handle: Any) -> dict:
        """Write ``length`` bytes from ``offset`` into ``handle``; S_OK(their adler32 as an int)."""
        opened = self._open(offset, length)
        if not opened["OK"]:
            return opened
        return receiveBody(opened["Value"], offset, length, handle, self._fetchRange, self._resumes)

    def readBytes(self, offset: int, length: int) -> dict:
        """S_OK(bytearray of ``length`` bytes from ``offset``): one part, buffered once."""
        buffer = bytearray(length)
        read = self.readInto(offset, length, BufferWriter(buffer, f"a buffer for {self.description}"))
        return S_OK(buffer) if read["OK"] else read

    def releaseOpenAnswer(self) -> None:
        """The whole-object answer the source was opened with will not be read (the copy goes
        by ranges): release its connection now rather than when the copy ends."""
        first = self._takeFirst()
        if first is not None:
            first.abandon()

    def close(self) -> None:
        """Release what the source holds (an unread answer, an open file)."""
        self.releaseOpenAnswer()
        if self._onClose is not None:
            self._onClose()
            self._onClose = None


def checkCopiedAdler(adler: int, checksum: str, source: CopySource) -> dict:
    """S_OK() when the bytes read (``adler``) are the catalog's (``checksum``); S_ERROR(EBADCKS) otherwise."""
    actual = intAdlerToHex(adler)
    if compareAdler(actual, checksum):
        return S_OK()
    return S_ERROR(
        DErrno.EBADCKS,
        f"the bytes read from {source.description} have adler32 {actual}, the catalog says {checksum}: "
        "the source changed during the copy or is corrupt",
    )


def checkCopyItems(items: Any) -> tuple[dict[str, tuple[int, str]], dict[str, dict]]:
    """({lfn: (size, adler32 as 8 lower-case hex digits)}, {lfn: S_ERROR}) of ``{lfn: {'Size', 'Checksum'}}``.

    A malformed LFN, size or checksum is EINVAL; a file the catalog has no checksum for
    cannot be verified on the way: EPROTONOSUPPORT (a local copy may still do it).
    """
    if not isinstance(items, dict):
        return {}, {str(items): S_ERROR(DErrno.EINVAL, f"items must be {{lfn: {{'Size', 'Checksum'}}}}, not {items!r}")}
    valid: dict[str, tuple[int, str]] = {}
    failed: dict[str, dict] = {}
    for lfn, item in items.items():
        checked = checkLFN(lfn)
        if not checked["OK"]:
            failed[str(lfn)] = S_ERROR(DErrno.EINVAL, f"cannot copy {lfn!r}: {checked['Message']}")
            continue
        size = item.get("Size") if isinstance(item, dict) else None
        checksum = item.get("Checksum") if isinstance(item, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            failed[lfn] = S_ERROR(DErrno.EINVAL, f"cannot copy {lfn}: its Size must be a number of bytes, not {size!r}")
        elif not checksum:
            message = f"cannot stream {lfn}: the catalog has no adler32 for it to check the copy against"
            failed[lfn] = S_ERROR(DErrno.EPROTONOSUPPORT, message)
        elif not isinstance(checksum, str) or len(checksum) > 8 or hexAdlerToInt(checksum) is False:
            message = f"cannot copy {lfn}: its Checksum must be an adler32, not {checksum!r}"
            failed[lfn] = S_ERROR(DErrno.EINVAL, message)
        else:
            valid[lfn] = (size, intAdlerToHex(hexAdlerToInt(checksum)))
    return valid, failed


def copyStreamed(source: Any, destination: Any, items: Any) -> dict[str, dict]:
    """{lfn: S_OK(size) | S_ERROR}: copy each file from plugin ``source`` to plugin ``destination``.

    The source reads are asked for all files at once (through a gateway: one request).
    """
    valid, results = checkCopyItems(items)
    if not valid:
        return results
    sides = ((source, "STREAMED_COPY_SOURCE", "read"), (destination, "STREAMED_COPY_DESTINATION", "written"))
    for plugin, able, role in sides:
        if not getattr(plugin, able, False):
            what = f"SE {getattr(plugin, 'name', '?')}: {getattr(plugin, 'pluginName', type(plugin).__name__)} storage"
            message = f"{what} cannot be {role} in a stream; {NOTHING_WRITTEN}"
            return {**results, **dict.fromkeys(valid, S_ERROR(DErrno.EPROTONOSUPPORT, message))}
    contexts = source._prepare("getFile", dict.fromkeys(valid))
    if not contexts["OK"]:
        failure = reframe(contexts, f"cannot read from SE {source.name}", NOTHING_WRITTEN)
        return {**results, **dict.fromkeys(valid, failure)}

    def copyOne(lfn: str, expected: tuple[int, str]) -> dict:
        context = settledContext(contexts["Value"].get(lfn))
        if isinstance(context, dict) and context.get("OK") is False:
            return reframe(context, f"cannot read {lfn} from SE {source.name}", NOTHING_WRITTEN)
        return _copyFile(source, destination, lfn, *expected, context)

    # each answer travels whole in S_OK (runBulk keeps only the message of a failure)
    answers, crashed = runBulk(
        valid.items(), lambda lfn, expected: S_OK(copyOne(lfn, expected)), destination.maxWorkers
    )
    results.update(answers)
    results.update({lfn: S_ERROR(DErrno.EEEXCEPTION, message) for lfn, message in crashed.items()})
    return results


def reframe(result: dict, before: str = "", after: str = "") -> dict:
    """``result``'s error, its errno kept, with ``before`` in front and ``after`` behind its detail.

    The detail is the message without the ``strerror ( errno : ...)`` frame ``S_ERROR`` put
    around it, so that a reason passed up through several layers is framed once.
    """
    errno = result.get("Errno") or DErrno.EIO
    detail = result["Message"]
    frame = f"{DErrno.strerror(errno)} ( {errno} : "
    if detail.startswith(frame) and detail.endswith(")"):
        detail = detail[len(frame) : -1]
    if before:
        detail = f"{before}: {detail}"
    if after and not detail.endswith(after):
        detail = f"{detail}; {after}"
    return S_ERROR(errno, detail)


def _copyFile(source: Any, destination: Any, lfn: str, size: int, checksum: str, context: Any) -> dict:
    """Copy one file whose catalog entry says ``size`` bytes with adler32 ``checksum``."""
    opened = source._openCopySource(lfn, context)
    if not opened["OK"]:
        named = f"{lfn} on SE {source.name}" in opened["Message"]  # the plugin's reason says what and where
        return reframe(opened, "" if named else f"cannot read {lfn} from SE {source.name}", NOTHING_WRITTEN)
    reader: CopySource = opened["Value"]
    try:
        if reader.size != size:
            message = f"{reader.description} has {reader.size} bytes, the catalog says {size}; {NOTHING_WRITTEN}"
            return S_ERROR(DErrno.EFILESIZE, message)
        if reader.checksum and not compareAdler(reader.checksum, checksum):
            message = (
                f"{reader.description} has adler32 {reader.checksum}, the catalog says {checksum}; {NOTHING_WRITTEN}"
            )
            return S_ERROR(DErrno.EBADCKS, message)
        written = destination._writeCopy(lfn, reader, checksum)
        if not written["OK"]:
            return reframe(written, f"streamed copy of {lfn} from SE {source.name} to SE {destination.name} failed")
        return written
    finally:
        reader.close()

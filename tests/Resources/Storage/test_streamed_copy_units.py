"""The pure parts of the streamed copy: item checks, buffers, ranges, resumes, parts, error frames."""

from __future__ import annotations

import os
import threading
import zlib

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.HttpClient import TransferInterrupted
from DIRAC.Resources.Storage.S3.Parts import sendParts
from DIRAC.Resources.Storage.StreamedCopy import (
    BufferWriter,
    ByteBudget,
    CopySource,
    FileRange,
    checkCopiedAdler,
    checkCopyItems,
    reframe,
)

MiB = 1024 * 1024


class Stream:
    """A body in memory read like a streamed answer; it breaks after ``breakAfter`` bytes if given."""

    def __init__(self, data: bytes, breakAfter: int | None = None):
        self.data, self.breakAfter, self.abandoned = data, breakAfter, False

    def chunks(self):
        for start in range(0, len(self.data), 1000):
            if self.breakAfter is not None and start >= self.breakAfter:
                raise TransferInterrupted(f"broke after {start} bytes")
            yield self.data[start : start + 1000]

    def abandon(self):
        self.abandoned = True


def source(data: bytes, first=None, breaks: dict | None = None, resumes: int = 2):
    """A CopySource over ``data``; ``breaks`` {offset: bytes before the stream from there breaks}."""
    asked = []

    def fetchRange(offset: int, length: int) -> dict:
        asked.append((offset, length))
        return S_OK(Stream(data[offset : offset + length], (breaks or {}).get(offset)))

    return CopySource("the test object", len(data), "", fetchRange, resumes, first), asked


def test_items_are_checked_and_checksums_normalised():
    valid, failed = checkCopyItems(
        {
            "/vo/a": {"Size": 3, "Checksum": "1A2B"},
            "/vo/b": {"Size": -1, "Checksum": "00000001"},
            "/vo/c": {"Size": True, "Checksum": "00000001"},
            "/vo/d": {"Size": 3, "Checksum": ""},
            "/vo/e": {"Size": 3, "Checksum": "not hex!"},
            "/vo/f": {"Size": 3, "Checksum": "123456789"},
            "/vo/../g": {"Size": 3, "Checksum": "00000001"},
            "/vo/h": "not a dict",
        }
    )
    assert valid == {"/vo/a": (3, "00001a2b")}
    assert {lfn: result["Errno"] for lfn, result in failed.items()} == {
        "/vo/b": DErrno.EINVAL,
        "/vo/c": DErrno.EINVAL,
        "/vo/d": DErrno.EPROTONOSUPPORT,
        "/vo/e": DErrno.EINVAL,
        "/vo/f": DErrno.EINVAL,
        "/vo/../g": DErrno.EINVAL,
        "/vo/h": DErrno.EINVAL,
    }
    assert "no adler32" in failed["/vo/d"]["Message"]


def test_items_that_are_no_dict_are_one_failure():
    valid, failed = checkCopyItems(["/vo/a"])
    assert valid == {} and [result["Errno"] for result in failed.values()] == [DErrno.EINVAL]


def test_buffer_writer_fills_in_order_and_refuses_overflow():
    buffer = bytearray(5)
    writer = BufferWriter(buffer, "buffer")
    writer.write(b"ab")
    writer.write(b"cde")
    assert buffer == b"abcde" and writer.position == 5
    with pytest.raises(OSError, match="do not fit"):
        writer.write(b"f")


def test_file_range_reads_its_range_and_notices_a_change(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 10)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(descriptor)
        pinned = (info.st_size, info.st_mtime_ns)
        assert b"".join(FileRange(descriptor, 10, 600, pinned, "f").chunks(100)) == (bytes(range(256)) * 10)[10:610]
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
        with pytest.raises(TransferInterrupted, match="f changed while being copied"):
            list(FileRange(descriptor, 0, 10, pinned, "f").chunks())
    finally:
        os.close(descriptor)


def test_the_open_answer_serves_a_whole_read_only():
    data = os.urandom(5000)
    first = Stream(data)
    whole, asked = source(data, first)
    assert whole.readBytes(0, len(data)) == S_OK(bytearray(data))
    assert asked == [] and not first.abandoned

    first = Stream(data)
    ranged, asked = source(data, first)
    assert ranged.readBytes(1000, 2000) == S_OK(bytearray(data[1000:3000]))
    assert first.abandoned and asked == [(1000, 2000)]


def test_the_open_answer_can_be_released_before_reading_by_ranges():
    data = os.urandom(3000)
    first = Stream(data)
    copySource, asked = source(data, first)
    copySource.releaseOpenAnswer()
    assert first.abandoned
    assert copySource.readBytes(0, len(data)) == S_OK(bytearray(data))
    assert asked == [(0, 3000)], "the whole read is fetched anew"


def test_close_abandons_an_unread_answer_and_runs_on_close():
    first, closed = Stream(b"abc"), []
    copySource = CopySource("x", 3, "", lambda _o, _l: S_ERROR("unused"), 0, first, onClose=lambda: closed.append(1))
    copySource.close()
    copySource.close()
    assert first.abandoned and closed == [1]


def test_a_broken_range_is_resumed_from_the_byte_reached():
    data = os.urandom(10000)
    copySource, asked = source(data, breaks={0: 3000})
    assert copySource.readBytes(0, len(data)) == S_OK(bytearray(data))
    assert asked == [(0, 10000), (3000, 7000)]


def test_a_range_that_keeps_breaking_fails_with_the_reason():
    data = os.urandom(10000)
    copySource, _asked = source(data, breaks={0: 1000, 1000: 1000, 2000: 1000}, resumes=2)
    result = copySource.readBytes(0, len(data))
    assert not result["OK"] and "resumed 2 times" in result["Message"], result


def test_copied_adler_is_compared_with_the_catalogs():
    copySource, _asked = source(b"abc")
    assert checkCopiedAdler(zlib.adler32(b"abc"), f"{zlib.adler32(b'abc'):08x}", copySource)["OK"]
    refused = checkCopiedAdler(zlib.adler32(b"abd"), f"{zlib.adler32(b'abc'):08x}", copySource)
    assert refused["Errno"] == DErrno.EBADCKS and "the test object" in refused["Message"]


def test_send_parts_reads_and_sends_each_part_once_and_combines_the_adler():
    data = os.urandom(12 * MiB + 5)
    reads, sent = [], {}

    def readPart(offset: int, length: int) -> dict:
        reads.append(offset)
        return S_OK(bytearray(data[offset : offset + length]))

    def sendPart(number: int, part: bytes, md5: str) -> dict:
        sent[number] = (bytes(part), md5)
        return S_OK(f'"etag-{number}"')

    result = sendParts(len(data), 5 * MiB, readPart, sendPart, 2)
    parts, adler = result["Value"]
    assert parts == [{"PartNumber": n, "ETag": f'"etag-{n}"'} for n in (1, 2, 3)]
    assert sorted(reads) == [0, 5 * MiB, 10 * MiB]
    assert b"".join(sent[n][0] for n in (1, 2, 3)) == data
    assert adler == zlib.adler32(data)


def test_send_parts_stops_at_the_first_failure():
    def readPart(offset: int, length: int) -> dict:
        return S_ERROR(DErrno.EIO, f"cannot read at {offset}") if offset else S_OK(b"x" * length)

    result = sendParts(11 * MiB, 5 * MiB, readPart, lambda n, _d, _m: S_OK(f"e{n}"), 1)
    assert not result["OK"] and "cannot read at" in result["Message"]


def test_reframe_keeps_one_frame_and_the_errno():
    inner = S_ERROR(DErrno.EEXIST, "the object exists")
    outer = reframe(reframe(inner, "copy failed", "nothing was written"), after="nothing was written")
    assert outer["Errno"] == DErrno.EEXIST
    assert outer["Message"].count("( 17 :") == 1
    assert outer["Message"].endswith("copy failed: the object exists; nothing was written)")


def test_object_buffers_wait_for_the_budget():
    budget = ByteBudget(10)
    order = []
    with budget.buffer(6) as first:
        assert len(first) == 6

        def second():
            with budget.buffer(6):
                order.append("second")

        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(0.2)
        assert waiting.is_alive(), "6 + 6 bytes are over the 10-byte budget: the second waits"
        order.append("first released")
    waiting.join(5)
    assert order == ["first released", "second"]
    with pytest.raises(ValueError, match="over the 10-byte budget"), budget.buffer(11):
        pass

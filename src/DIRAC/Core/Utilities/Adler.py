"""adler32 checksums as DIRAC writes them: eight lower-case hex digits.

``Adler32`` is the streaming form: feed it the chunks while they move so a
transfer reads its bytes once and checks them in the same pass.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import BinaryIO

CHUNK_SIZE = 4 * 1024 * 1024


class Adler32:
    """Incremental adler32 over the chunks passed to ``update``."""

    def __init__(self) -> None:
        self.value = 1
        self.size = 0

    def update(self, data: bytes) -> None:
        """Add ``data`` to the running checksum."""
        self.value = zlib.adler32(data, self.value)
        self.size += len(data)

    def hexdigest(self) -> str:
        """The checksum so far, as eight hex digits."""
        return intAdlerToHex(self.value)


class Adler32MD5(Adler32):
    """adler32 and MD5 of the same chunks, in one pass: what an upload pins.

    The adler32 is the checksum DIRAC stores; the MD5 is what S3 verifies when it
    is sent as ``Content-MD5`` (so the store refuses bytes that changed on the way).
    """

    def __init__(self) -> None:
        super().__init__()
        self._md5 = hashlib.md5()

    def update(self, data: bytes) -> None:
        """Add ``data`` to both running digests."""
        super().update(data)
        self._md5.update(data)

    def md5Base64(self) -> str:
        """The MD5 so far as a ``Content-MD5`` header value (base64 of the 16 bytes)."""
        return base64.b64encode(self._md5.digest()).decode()


_MOD = 65521


def adlerCombine(first: int, second: int, secondLength: int) -> int:
    """adler32 of A+B from adler32(A), adler32(B) and len(B).

    Lets parts of a file be checksummed in parallel, each in the pass that moves
    its bytes, and combined in order afterwards (zlib's adler32_combine).
    """
    remainder = secondLength % _MOD
    sum1 = first & 0xFFFF
    sum2 = (remainder * sum1) % _MOD
    sum1 = (sum1 + (second & 0xFFFF) + _MOD - 1) % _MOD
    sum2 = (sum2 + ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + _MOD - remainder) % _MOD
    return sum1 | (sum2 << 16)


def intAdlerToHex(value: int) -> str:
    """Format an adler32 integer the way DIRAC stores it."""
    return f"{value & 0xFFFFFFFF:08x}"


def hexAdlerToInt(hexAdler: str) -> int | bool:
    """Parse a stored checksum; False when it is not hex."""
    try:
        return int(hexAdler, 16)
    except (TypeError, ValueError):
        return False


def stringAdler(data: bytes | str) -> str:
    """adler32 of an in-memory value."""
    if isinstance(data, str):
        data = data.encode()
    return intAdlerToHex(zlib.adler32(data))


def readAdler(stream: BinaryIO, chunkSize: int = CHUNK_SIZE) -> str:
    """adler32 of everything left in ``stream``, read in chunks."""
    adler = Adler32()
    while chunk := stream.read(chunkSize):
        adler.update(chunk)
    return adler.hexdigest()


def fileAdler(fileName: str) -> str | bool:
    """adler32 of a file, or False when it cannot be read (DIRAC's convention)."""
    try:
        with open(fileName, "rb") as stream:
            return readAdler(stream)
    except OSError:
        return False


def fileAdlerMD5(fileName: str) -> tuple[str, str] | bool:
    """(adler32, base64 MD5) of a file read once, or False when it cannot be read."""
    digest = Adler32MD5()
    try:
        with open(fileName, "rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest(), digest.md5Base64()


def compareAdler(first: str, second: str) -> bool:
    """Compare two stored checksums ignoring case and dropped leading zeros."""
    firstInt, secondInt = hexAdlerToInt(first), hexAdlerToInt(second)
    return firstInt is not False and firstInt == secondInt

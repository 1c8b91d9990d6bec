"""A minimal DER reader: just enough to read X.509 extensions by OID.

M2Crypto names extensions through OpenSSL's object table, which does not know
DIRAC's private OIDs (the group extension 1.2.42.42). Walking the certificate's
DER ourselves gives an exact, table-independent answer for any OID.
"""

from __future__ import annotations

TAG_BOOLEAN = 0x01
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_UTF8 = 0x0C
TAG_PRINTABLE = 0x13
TAG_IA5 = 0x16
TAG_SEQUENCE = 0x30
TAG_EXTENSIONS = 0xA3  # [3] EXPLICIT in TBSCertificate

STRING_TAGS = {TAG_UTF8, TAG_PRINTABLE, TAG_IA5, 0x14, 0x1E}


class DERError(ValueError):
    """The bytes are not the DER structure we expected."""


def readTLV(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at ``pos``."""
    if pos + 2 > len(data):
        raise DERError("truncated DER element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DERError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise DERError("DER element longer than its container")
    return tag, pos, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The (tag, start, end) of every element between ``start`` and ``end``."""
    items = []
    pos = start
    while pos < end:
        tag, cStart, cEnd = readTLV(data, pos)
        items.append((tag, cStart, cEnd))
        pos = cEnd
    return items


def decodeOID(raw: bytes) -> str:
    """Dotted text of an OBJECT IDENTIFIER's content bytes."""
    if not raw:
        raise DERError("empty OID")
    parts = [min(raw[0] // 40, 2), raw[0] - 40 * min(raw[0] // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(part) for part in parts)


def certificateExtensions(certDER: bytes) -> dict[str, tuple[bool, bytes]]:
    """``{oid: (critical, extnValue bytes)}`` of a DER certificate; DERError if malformed."""
    _, certStart, _certEnd = readTLV(certDER, 0)
    tbsTag, tbsStart, tbsEnd = readTLV(certDER, certStart)
    if tbsTag != TAG_SEQUENCE:
        raise DERError("certificate does not start with a TBSCertificate sequence")
    extensions: dict[str, tuple[bool, bytes]] = {}
    for tag, start, _end in children(certDER, tbsStart, tbsEnd):
        if tag != TAG_EXTENSIONS:
            continue
        _, seqStart, seqEnd = readTLV(certDER, start)
        for _, extStart, extEnd in children(certDER, seqStart, seqEnd):
            parts = children(certDER, extStart, extEnd)
            if not parts or parts[0][0] != TAG_OID:
                raise DERError("extension without an OID")
            oid = decodeOID(certDER[parts[0][1] : parts[0][2]])
            critical = False
            for pTag, pStart, pEnd in parts[1:]:
                if pTag == TAG_BOOLEAN:
                    critical = certDER[pStart:pEnd] != b"\x00"
                elif pTag == TAG_OCTET_STRING:
                    extensions[oid] = (critical, certDER[pStart:pEnd])
    return extensions


def decodeString(value: bytes) -> str:
    """Text of an extension value holding one ASN.1 string (IA5, UTF8, ...), else the raw bytes as text."""
    try:
        tag, start, end = readTLV(value, 0)
        if tag in STRING_TAGS and end == len(value):
            encoding = "utf-16-be" if tag == 0x1E else "utf-8"
            return value[start:end].decode(encoding, errors="replace")
    except DERError:
        pass
    return value.decode("utf-8", errors="replace")

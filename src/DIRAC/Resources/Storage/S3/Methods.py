"""The S3 operations a presigned URL can be asked for, shared by the gateway and its clients.

Each operation names its HTTP request (method, fixed query, pinned headers), the
catalog permission it needs and the storage element access it uses. Both signers
build the request from ``(s3_method, key, params)``: the gateway to sign it for a
client without keys, the client to know the headers it must send with the URL it
gets back. Through the gateway (``viaGateway``) the rules are strict, because a
signed URL must say exactly what may happen:

* an object operation names one object: a non-empty key without a trailing ``/``,
  without empty, ``.`` or ``..`` segments and without control characters; never
  the bucket itself (that would be a bucket listing, HEAD or DELETE);
* a listing is a directory's prefix with the fixed ``/`` delimiter and at most
  1000 keys per page;
* only the parameters the operation takes are accepted; nothing the caller sends
  becomes a query parameter name or a header name;
* a put or part upload pins ``Content-Length`` and ``Content-MD5`` (the store
  refuses other bytes), a put pins the adler32 checksum metadata, and a put or a
  multipart completion carries ``If-None-Match: *`` (the store refuses to replace
  an existing object);
* a multi-object delete (``delete_objects``) pins the ``Content-MD5`` of the XML
  body naming its keys (``deleteObjectsBody``): the URL removes those keys and no
  others. The gateway signs it only in ``export_presignDeleteObjects``;
* a server-side copy (``copy_object``, ``upload_part_copy``) pins its source: the
  bucket and key in ``x-amz-copy-source`` and the ETag in
  ``x-amz-copy-source-if-match``, all signed, so the URL copies that object as it
  was and nothing else; ``copy_object`` keeps the source's metadata (checksum
  included, ``x-amz-metadata-directive: COPY``) and carries ``If-None-Match: *``,
  a part copy names its byte range. It needs the right to read the source LFN and
  to add a replica of the destination LFN; the gateway names the source bucket and
  key itself (``export_presignCopy``), never the caller.

With the SE's own keys, keys holding control characters (which other tools may
write) are allowed: only the gateway refuses them. Direct multipart uploads may
bind each part by its CRC32 instead of its MD5 (``ChecksumAlgorithm`` on create,
``ChecksumCRC32`` on each part: S3's flexible checksums, as boto3 sends them);
the gateway never signs those: its part URLs pin the MD5.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote
from xml.sax.saxutils import escape

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import hexAdlerToInt
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Settings import isBucketName
from DIRAC.Resources.Storage.S3.TransferSettings import MAX_PART_SIZE
from DIRAC.Resources.Storage.Utilities import CONTROL_CHARACTERS, hasBadSegment

CHECKSUM_HEADER = "x-amz-meta-checksum"
#: the one flexible checksum direct multipart uploads use (zlib computes it at 0.15 s/GiB, MD5 takes 1.2)
PART_CHECKSUM_ALGORITHM = "CRC32"
#: catalog operations (``hasAccess`` opType) the S3 operations need
READ_FILE, LIST_DIRECTORY, WRITE_FILE, REMOVE_FILE = "getFileMetadata", "listDirectory", "addFile", "removeFile"
#: catalog operation a server-side copy needs on its destination LFN (its source needs ``READ_FILE``)
ADD_REPLICA = "addReplica"
#: storage element access (``ReadAccess`` / ``WriteAccess`` / ``RemoveAccess``) the S3 operations use
SE_READ, SE_WRITE, SE_REMOVE = "Read", "Write", "Remove"
#: listings the gateway performs itself and answers filtered by the catalog (getListing), never signs:
#: S3's raw answer shows the size and ETag (MD5) of every key, and the names of unregistered objects
GATEWAY_ANSWERS = frozenset({"list_objects", "list_multipart_uploads"})
#: reads of one object: through the gateway, an LFN the catalog does not know needs the right to create it
OBJECT_READS = frozenset({"get_object", "head_object"})
#: Lifetime, in seconds, of every URL that writes or removes (puts, parts, multipart steps, deletes)
#: through the gateway. Such a URL answers "may this caller change this name now?"; the catalog's
#: answer can change (another user registers the name, a directory is made private, the SE is
#: banned), so the URL must not outlive the question by much. Ten minutes covers the wait before a bulk call's last
#: upload starts; the store checks the expiry when a request starts, not while its bytes move.
WRITE_URL_SECONDS = 600
MAX_KEYS = 1000
MAX_TOKEN_LENGTH = 1024
#: the headers that pin a server-side copy's source, and the one that keeps its metadata
COPY_SOURCE_HEADER = "x-amz-copy-source"
COPY_IF_MATCH_HEADER = "x-amz-copy-source-if-match"
COPY_RANGE_HEADER = "x-amz-copy-source-range"
METADATA_DIRECTIVE_HEADER = "x-amz-metadata-directive"
#: the copy parameters the gateway fills in itself from the source SE and the LFN (a caller never names them)
GATEWAY_SOURCE_PARAMS = frozenset({"SourceBucket", "SourceKey"})
#: ``presignCopy`` signs the part copies of one file at once when asked ``{"Parts": {"<number>": "bytes=a-b"}}``,
#: this many at most per call
COPY_PARTS_PER_CALL = 1000
#: an ETag as S3 servers send it: quoted, printable, no quote or space inside
_ETAG = re.compile(r'^"[!#-~]{1,128}"$')
_COPY_RANGE = re.compile(r"^bytes=(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})$")


@dataclass(frozen=True)
class S3Operation:
    """One S3 operation: its HTTP request, the catalog permission and SE access it needs."""

    httpMethod: str
    permission: str
    access: str
    params: frozenset[str] = frozenset()
    fixedQuery: tuple[tuple[str, str], ...] = ()
    pinsChecksum: bool = False
    bindsBytes: bool = False
    createsObject: bool = False
    needsUploadId: bool = False
    onBucket: bool = False
    bindsBody: bool = False
    copiesSource: bool = False

    @property
    def changesStorage(self) -> bool:
        """True for the operations that write or remove: their URLs live ``WRITE_URL_SECONDS`` at most."""
        return self.access in (SE_WRITE, SE_REMOVE)


_BYTES = frozenset({"Size", "ContentMD5"})
_UPLOAD = frozenset({"UploadId"})
_SOURCE = frozenset({"SourceBucket", "SourceKey", "SourceETag"})

OPERATIONS: dict[str, S3Operation] = {
    "head_object": S3Operation("HEAD", READ_FILE, SE_READ),
    "get_object": S3Operation("GET", READ_FILE, SE_READ),
    "put_object": S3Operation(
        "PUT", WRITE_FILE, SE_WRITE, _BYTES | {"Checksum"}, pinsChecksum=True, bindsBytes=True, createsObject=True
    ),
    "delete_object": S3Operation("DELETE", REMOVE_FILE, SE_REMOVE),
    "create_multipart_upload": S3Operation(
        "POST", WRITE_FILE, SE_WRITE, frozenset({"Checksum"}), (("uploads", ""),), pinsChecksum=True
    ),
    "upload_part": S3Operation(
        "PUT", WRITE_FILE, SE_WRITE, _BYTES | _UPLOAD | {"PartNumber"}, bindsBytes=True, needsUploadId=True
    ),
    "complete_multipart_upload": S3Operation(
        "POST", WRITE_FILE, SE_WRITE, _UPLOAD, createsObject=True, needsUploadId=True
    ),
    "abort_multipart_upload": S3Operation("DELETE", WRITE_FILE, SE_WRITE, _UPLOAD, needsUploadId=True),
    # server-side copies: the destination's permission and access here, the source's: READ_FILE, COPY_SOURCE_ACCESS
    "copy_object": S3Operation("PUT", ADD_REPLICA, SE_WRITE, _SOURCE, createsObject=True, copiesSource=True),
    "upload_part_copy": S3Operation(
        "PUT",
        ADD_REPLICA,
        SE_WRITE,
        _SOURCE | _UPLOAD | {"PartNumber", "SourceRange"},
        needsUploadId=True,
        copiesSource=True,
    ),
    "list_objects": S3Operation(
        "GET",
        LIST_DIRECTORY,
        SE_READ,
        frozenset({"ContinuationToken", "MaxKeys"}),
        (("delimiter", "/"), ("encoding-type", "url"), ("list-type", "2")),
        onBucket=True,
    ),
    "delete_objects": S3Operation(
        "POST", REMOVE_FILE, SE_REMOVE, frozenset({"Keys"}), (("delete", ""),), onBucket=True, bindsBody=True
    ),
    # unfinished uploads under a directory (to abort what a killed client left): listed like the directory
    "list_multipart_uploads": S3Operation(
        "GET", LIST_DIRECTORY, SE_READ, frozenset({"KeyMarker", "UploadIdMarker"}), (("uploads", ""),), onBucket=True
    ),
}
#: the SE access a server-side copy needs at its source (and the catalog: a read of the LFN, ``READ_FILE``)
COPY_SOURCE_ACCESS = SE_READ
#: keys per DeleteObjects request (S3's limit)
MAX_DELETE_KEYS = 1000
#: characters a DeleteObjects body cannot carry back and forth: those XML 1.0 forbids, and the
#: carriage return (XML parsers read it as a line feed, so the answer would name another key)
_NOT_XML = re.compile("[\\x00-\\x08\\x0b-\\x1f\\ufffe\\uffff\\ud800-\\udfff]")


def canDeleteInBulk(key: str) -> bool:
    """True when ``key`` can be named in a DeleteObjects XML body."""
    return not _NOT_XML.search(key)


def deleteObjectsBody(keys: list[str]) -> bytes:
    """The DeleteObjects XML body for ``keys``, byte for byte the same wherever it is built.

    The gateway signs its Content-MD5 and the client sends it: both build it here,
    from the keys sorted (so their order in a call does not matter).
    """
    objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in sorted(set(keys)))
    return f'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>false</Quiet>{objects}</Delete>'.encode()


def contentMD5(digest: bytes) -> str:
    """The ``Content-MD5`` header value of an MD5 digest (base64 of its 16 bytes)."""
    return base64.b64encode(digest).decode()


def bytesContentMD5(data: bytes) -> str:
    """The ``Content-MD5`` header value of ``data``."""
    return contentMD5(hashlib.md5(data).digest())


def _isBase64Of(value: object, length: int) -> bool:
    """True when ``value`` is the canonical base64 of ``length`` bytes (a digest header's form)."""
    if not isinstance(value, str):
        return False
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == length and base64.b64encode(raw).decode() == value


def isContentMD5(value: object) -> bool:
    """True for a well-formed ``Content-MD5`` value: canonical base64 of 16 bytes."""
    return _isBase64Of(value, 16)


def _checkSegments(s3Method: str, name: str, strict: bool = True) -> dict:
    if strict and CONTROL_CHARACTERS.search(name):
        return S_ERROR(DErrno.EINVAL, f"{s3Method}: the name {name!r} holds control characters")
    if hasBadSegment(name):
        return S_ERROR(DErrno.EINVAL, f"{s3Method}: the name {name!r} has an empty, '.' or '..' segment")
    return S_OK(name)


def checkObjectKey(s3Method: str, key: str, strict: bool = True) -> dict:
    """S_OK(key) when ``key`` names one object; S_ERROR saying why not (nothing is signed then).

    ``strict`` (the gateway) also refuses control characters."""
    if not isinstance(key, str) or not key:
        return S_ERROR(DErrno.EINVAL, f"{s3Method} needs the URL of a file, not of the bucket or its top")
    if key.endswith("/"):
        return S_ERROR(DErrno.EINVAL, f"{s3Method} needs the URL of a file, not of a directory ({key!r} ends with '/')")
    return _checkSegments(s3Method, key, strict)


def checkListPrefix(prefix: str, strict: bool = True) -> dict:
    """S_OK(prefix) for a directory's listing prefix ('' for the top, else ending with one '/')."""
    if prefix == "":
        return S_OK(prefix)
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        return S_ERROR(DErrno.EINVAL, f"list_objects needs a directory prefix ending with '/', not {prefix!r}")
    checked = _checkSegments("list_objects", prefix[:-1], strict)
    return S_OK(prefix) if checked["OK"] else checked


def checkChecksum(s3Method: str, checksum: object, name: str = "Checksum") -> dict:
    """S_OK(checksum in lower case) for an adler32 of 8 hex digits given as ``name``."""
    if not isinstance(checksum, str) or len(checksum) != 8 or hexAdlerToInt(checksum) is False:
        return S_ERROR(DErrno.EINVAL, f"{s3Method} needs the file's adler32 as {name} (8 hex digits)")
    return S_OK(checksum.lower())


def _isInt(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bytesHeaders(s3Method: str, params: dict, required: bool) -> dict:
    """S_OK({Content-Length, Content-MD5}) from ``Size`` / ``ContentMD5``; both required through the gateway."""
    headers: dict[str, str] = {}
    size, md5 = params.get("Size"), params.get("ContentMD5")
    if required and (size is None or md5 is None):
        return S_ERROR(
            DErrno.EINVAL,
            f"{s3Method} needs Size (bytes) and ContentMD5 (base64 of the MD5 digest of the bytes): "
            "a URL that writes binds the bytes it may write",
        )
    if size is not None:
        if not _isInt(size) or size < 0:
            return S_ERROR(DErrno.EINVAL, f"{s3Method}: Size must be a number of bytes, not {size!r}")
        headers["Content-Length"] = str(size)
    if md5 is not None:
        if not isContentMD5(md5):
            return S_ERROR(DErrno.EINVAL, f"{s3Method}: ContentMD5 must be base64 of a 16-byte MD5 digest")
        headers["Content-MD5"] = md5
    return S_OK(headers)


def isChecksumCRC32(value: object) -> bool:
    """True for a well-formed ``x-amz-checksum-crc32`` value: canonical base64 of 4 bytes."""
    return _isBase64Of(value, 4)


def _flexibleChecksumHeaders(s3Method: str, params: dict) -> dict:
    """S_OK(headers) of a direct multipart upload's CRC32: ``ChecksumAlgorithm`` on create, ``ChecksumCRC32``
    on a part."""
    headers: dict[str, str] = {}
    algorithm = params.get("ChecksumAlgorithm")
    if s3Method == "create_multipart_upload" and algorithm is not None:
        if algorithm != PART_CHECKSUM_ALGORITHM:
            return S_ERROR(DErrno.EINVAL, f"{s3Method}: ChecksumAlgorithm must be {PART_CHECKSUM_ALGORITHM}")
        headers["x-amz-checksum-algorithm"] = algorithm
    crc = params.get("ChecksumCRC32")
    if s3Method == "upload_part" and crc is not None:
        if not isChecksumCRC32(crc):
            return S_ERROR(DErrno.EINVAL, f"{s3Method}: ChecksumCRC32 must be base64 of a 4-byte CRC32")
        headers["x-amz-checksum-crc32"] = crc
    return S_OK(headers)


def buildRequest(s3Method: str, key: str, params: dict | None, viaGateway: bool = False) -> dict:
    """S_OK((httpMethod, key or None for the bucket, query, headers)) for an operation on ``key``.

    ``params``: ``Checksum`` (adler32, pinned as metadata on put / create),
    ``Size`` and ``ContentMD5`` (pinned as ``Content-Length`` and ``Content-MD5``
    on put / part), ``UploadId`` and ``PartNumber`` (multipart), ``ChecksumAlgorithm``
    (create) and ``ChecksumCRC32`` (part) for a direct upload's flexible checksum,
    ``ContinuationToken`` and ``MaxKeys`` (listing; ``key`` is then the
    directory's prefix), ``Keys`` (delete_objects: 1..1,000 keys, the Content-MD5
    of their XML body pinned), ``KeyMarker`` and ``UploadIdMarker`` (listing unfinished
    multipart uploads). ``viaGateway`` applies the gateway's rules (module doc):
    unknown parameters refused, checksum, size and MD5 required for a put, and
    ``If-None-Match: *`` on what creates an object.
    """
    operation = OPERATIONS.get(s3Method)
    if operation is None:
        return S_ERROR(DErrno.EINVAL, f"unknown S3 method {s3Method!r}; known: {', '.join(OPERATIONS)}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return S_ERROR(DErrno.EINVAL, f"{s3Method}: parameters must be a dict, not {type(params).__name__}")
    unknown = sorted(str(name) for name in params if name not in operation.params)
    if viaGateway and unknown:
        takes = ", ".join(sorted(operation.params)) or "no parameters"
        return S_ERROR(DErrno.EINVAL, f"{s3Method} takes {takes}; not {', '.join(unknown)}")
    if operation.bindsBody:
        return _deleteObjectsRequest(operation, params)
    checkedKey = checkListPrefix(key, viaGateway) if operation.onBucket else checkObjectKey(s3Method, key, viaGateway)
    if not checkedKey["OK"]:
        return checkedKey
    query = dict(operation.fixedQuery)
    headers: dict[str, str] = {}
    if operation.pinsChecksum and (viaGateway or params.get("Checksum")):
        checksum = checkChecksum(s3Method, params.get("Checksum"))
        if not checksum["OK"]:
            return checksum
        headers[CHECKSUM_HEADER] = checksum["Value"]
    if operation.bindsBytes:
        pinned = _bytesHeaders(s3Method, params, required=viaGateway)
        if not pinned["OK"]:
            return pinned
        headers.update(pinned["Value"])
    if not viaGateway:
        flexible = _flexibleChecksumHeaders(s3Method, params)
        if not flexible["OK"]:
            return flexible
        headers.update(flexible["Value"])
    if operation.createsObject and viaGateway:
        headers["If-None-Match"] = "*"
    if operation.needsUploadId:
        uploadId = params.get("UploadId")
        if not isinstance(uploadId, str) or not uploadId or len(uploadId) > MAX_TOKEN_LENGTH:
            return S_ERROR(DErrno.EINVAL, f"{s3Method} needs UploadId (the string create_multipart_upload answered)")
        query["uploadId"] = uploadId
    if s3Method in ("upload_part", "upload_part_copy"):
        number = params.get("PartNumber")
        if not _isInt(number) or not 1 <= number <= 10000:
            return S_ERROR(DErrno.EINVAL, f"{s3Method} needs PartNumber between 1 and 10000")
        query["partNumber"] = str(number)
    if operation.copiesSource:
        pinned = _copyHeaders(s3Method, params, viaGateway)
        if not pinned["OK"]:
            return pinned
        headers.update(pinned["Value"])
    if s3Method == "list_multipart_uploads":
        query["prefix"] = key
        for name, option in (("KeyMarker", "key-marker"), ("UploadIdMarker", "upload-id-marker")):
            marker = params.get(name)
            if marker and (
                not isinstance(marker, str) or len(marker) > MAX_TOKEN_LENGTH or CONTROL_CHARACTERS.search(marker)
            ):
                return S_ERROR(DErrno.EINVAL, f"{s3Method}: {name} must be the marker the previous page answered")
            if marker:
                query[option] = marker
        return S_OK((operation.httpMethod, None, query, headers))
    if operation.onBucket:
        return _listingRequest(operation, key, params, query, headers)
    return S_OK((operation.httpMethod, key, query, headers))


def _listingRequest(operation: S3Operation, prefix: str, params: dict, query: dict, headers: dict) -> dict:
    maxKeys = params.get("MaxKeys", MAX_KEYS)
    if not _isInt(maxKeys) or not 1 <= maxKeys <= MAX_KEYS:
        return S_ERROR(DErrno.EINVAL, f"list_objects: MaxKeys must be 1..{MAX_KEYS}, not {maxKeys!r}")
    token = params.get("ContinuationToken") or ""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return S_ERROR(DErrno.EINVAL, "list_objects: ContinuationToken must be the string a listing answered")
    query["prefix"] = prefix
    query["max-keys"] = str(maxKeys)
    if token:
        query["continuation-token"] = token
    return S_OK((operation.httpMethod, None, query, headers))


def _deleteObjectsRequest(operation: S3Operation, params: dict) -> dict:
    keys = params.get("Keys")
    if not isinstance(keys, list) or not 0 < len(keys) <= MAX_DELETE_KEYS:
        return S_ERROR(DErrno.EINVAL, f"delete_objects needs Keys: a list of 1..{MAX_DELETE_KEYS} keys")
    if not all(isinstance(key, str) and key and canDeleteInBulk(key) for key in keys):
        return S_ERROR(DErrno.EINVAL, "delete_objects: every key must be a non-empty string XML can carry")
    body = deleteObjectsBody(keys)
    headers = {"Content-MD5": bytesContentMD5(body), "Content-Length": str(len(body))}
    return S_OK((operation.httpMethod, None, dict(operation.fixedQuery), headers))


def copySourceHeader(bucket: str, key: str) -> str:
    """The ``x-amz-copy-source`` value of ``bucket``/``key``: ``/bucket/key``, the key URL-encoded."""
    return f"/{bucket}/{quote(key, safe='/~')}"


def _copyHeaders(s3Method: str, params: dict, viaGateway: bool) -> dict:
    """S_OK(the headers pinning a copy's source) from ``SourceBucket``, ``SourceKey``, ``SourceETag``
    (and ``SourceRange`` for a part); all are required, in both modes: a copy never reads an unpinned
    source. A whole copy keeps the source's metadata and carries ``If-None-Match: *``."""
    bucket, key, etag = params.get("SourceBucket"), params.get("SourceKey"), params.get("SourceETag")
    if not isBucketName(bucket):
        return S_ERROR(DErrno.EINVAL, f"{s3Method} needs SourceBucket, a bucket name")
    checkedKey = checkObjectKey(f"{s3Method} source", key, viaGateway)
    if not checkedKey["OK"]:
        return checkedKey
    if not isinstance(etag, str) or not _ETAG.match(etag):
        return S_ERROR(DErrno.EINVAL, f"{s3Method} needs SourceETag, the quoted ETag the source's HEAD answered")
    headers = {COPY_SOURCE_HEADER: copySourceHeader(bucket, key), COPY_IF_MATCH_HEADER: etag}
    if s3Method == "copy_object":
        # with keys too: a copy never replaces an object (a replica is made once)
        headers.update({METADATA_DIRECTIVE_HEADER: "COPY", "If-None-Match": "*"})
        return S_OK(headers)
    byteRange = params.get("SourceRange")
    matched = _COPY_RANGE.match(byteRange) if isinstance(byteRange, str) else None
    if not matched or not 0 <= int(matched[2]) - int(matched[1]) < MAX_PART_SIZE:
        return S_ERROR(
            DErrno.EINVAL,
            f"{s3Method} needs SourceRange 'bytes=first-last' (inclusive, at most 5 GiB), not {byteRange!r}",
        )
    headers[COPY_RANGE_HEADER] = byteRange
    return S_OK(headers)


def completionBody(parts: list[dict]) -> bytes:
    """The CompleteMultipartUpload XML body listing ``[{'PartNumber', 'ETag'}]`` in order, with each
    part's ``ChecksumCRC32`` when it has one (an upload created with that algorithm: S3 wants them)."""
    listed = "".join(
        f"<Part><PartNumber>{part['PartNumber']}</PartNumber><ETag>{escape(part['ETag'])}</ETag>"
        + (f"<ChecksumCRC32>{escape(part['ChecksumCRC32'])}</ChecksumCRC32>" if part.get("ChecksumCRC32") else "")
        + "</Part>"
        for part in parts
    )
    return f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()

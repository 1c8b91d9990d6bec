"""The S3 operations a presigned URL can be asked for, shared by the gateway and its clients.

Each operation names its HTTP request (method, query, pinned headers) and the
catalog permission it needs. Both signers build the request from
``(s3_method, key, params)``: the gateway to sign it for a client without keys,
the client to know the headers it must send with the URL it gets back.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import hexAdlerToInt
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

CHECKSUM_HEADER = "x-amz-meta-checksum"
READ, WRITE, DELETE = "getFileMetadata", "addFile", "removeFile"


@dataclass(frozen=True)
class S3Operation:
    """One S3 operation: its HTTP method, fixed query, and the catalog permission it needs."""

    httpMethod: str
    permission: str
    fixedQuery: tuple[tuple[str, str], ...] = ()
    pinsChecksum: bool = False
    needsUploadId: bool = False
    onBucket: bool = False
    bindsBody: bool = False


OPERATIONS: dict[str, S3Operation] = {
    "head_object": S3Operation("HEAD", READ),
    "get_object": S3Operation("GET", READ),
    "put_object": S3Operation("PUT", WRITE, pinsChecksum=True),
    "delete_object": S3Operation("DELETE", DELETE),
    "create_multipart_upload": S3Operation("POST", WRITE, (("uploads", ""),), pinsChecksum=True),
    "upload_part": S3Operation("PUT", WRITE, needsUploadId=True),
    "complete_multipart_upload": S3Operation("POST", WRITE, needsUploadId=True),
    "abort_multipart_upload": S3Operation("DELETE", WRITE, needsUploadId=True),
    "list_objects": S3Operation(
        "GET", READ, (("delimiter", "/"), ("encoding-type", "url"), ("list-type", "2")), onBucket=True
    ),
    # DeleteObjects: the URL binds the exact XML body through its Content-MD5; through the
    # gateway only ``S3GatewayHandler.export_presignDeleteObjects`` signs it, never createPresignedUrl
    "delete_objects": S3Operation("POST", DELETE, (("delete", ""),), onBucket=True, bindsBody=True),
}
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


def contentMD5(body: bytes) -> str:
    """The base64 MD5 that S3 checks a body against (``Content-MD5``)."""
    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3's integrity header


def buildRequest(s3Method: str, key: str, params: dict | None, requireChecksum: bool = False) -> dict:
    """S_OK((httpMethod, key or None for the bucket, query, headers)) for an operation on ``key``.

    ``params``: ``Checksum`` (adler32, pinned as metadata on put / create),
    ``Size`` (pinned as Content-Length on put / part),
    ``UploadId`` and ``PartNumber`` (multipart), ``ContinuationToken`` and
    ``MaxKeys`` (listing; ``key`` is then the directory's prefix), ``Keys``
    (delete_objects: 1..1,000 keys, Content-MD5 of their XML body pinned). With
    ``requireChecksum`` (the gateway) a put or multipart creation without a
    checksum is refused, so every object written through it carries one.
    """
    operation = OPERATIONS.get(s3Method)
    if operation is None:
        return S_ERROR(DErrno.EINVAL, f"unknown S3 method {s3Method!r}; known: {', '.join(OPERATIONS)}")
    params = params if isinstance(params, dict) else {}
    query = dict(operation.fixedQuery)
    headers = {}
    if operation.pinsChecksum and (requireChecksum or params.get("Checksum")):
        checksum = str(params.get("Checksum", ""))
        if len(checksum) != 8 or hexAdlerToInt(checksum) is False:
            return S_ERROR(DErrno.EINVAL, f"{s3Method} needs the file's adler32 as Checksum (8 hex digits)")
        headers[CHECKSUM_HEADER] = checksum.lower()
    size = params.get("Size")
    if s3Method in ("put_object", "upload_part") and size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return S_ERROR(DErrno.EINVAL, f"{s3Method}: Size must be a number of bytes, not {size!r}")
        headers["Content-Length"] = str(size)
    if operation.needsUploadId:
        if not params.get("UploadId") or not isinstance(params["UploadId"], str):
            return S_ERROR(DErrno.EINVAL, f"{s3Method} needs UploadId")
        query["uploadId"] = params["UploadId"]
    if s3Method == "upload_part":
        number = params.get("PartNumber")
        if not isinstance(number, int) or not 1 <= number <= 10000:
            return S_ERROR(DErrno.EINVAL, "upload_part needs PartNumber between 1 and 10000")
        query["partNumber"] = str(number)
    if s3Method == "delete_objects":
        keys = params.get("Keys")
        if not isinstance(keys, list) or not 0 < len(keys) <= MAX_DELETE_KEYS:
            return S_ERROR(DErrno.EINVAL, f"delete_objects needs Keys: a list of 1..{MAX_DELETE_KEYS} keys")
        if not all(isinstance(k, str) and k and canDeleteInBulk(k) for k in keys):
            return S_ERROR(DErrno.EINVAL, "delete_objects: every key must be a non-empty string XML can carry")
        body = deleteObjectsBody(keys)
        headers["Content-MD5"] = contentMD5(body)
        headers["Content-Length"] = str(len(body))
        return S_OK((operation.httpMethod, None, query, headers))
    if operation.onBucket:
        query["prefix"] = key
        query["max-keys"] = str(min(max(int(params.get("MaxKeys", 1000) or 1000), 1), 1000))
        if params.get("ContinuationToken"):
            query["continuation-token"] = str(params["ContinuationToken"])
        return S_OK((operation.httpMethod, None, query, headers))
    return S_OK((operation.httpMethod, key, query, headers))

"""The S3 operations a presigned URL can be asked for, shared by the gateway and its clients.

Each operation names its HTTP request (method, query, pinned headers) and the
catalog permission it needs. Both signers build the request from
``(s3_method, key, params)``: the gateway to sign it for a client without keys,
the client to know the headers it must send with the URL it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass

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


OPERATIONS: dict[str, S3Operation] = {
    "head_object": S3Operation("HEAD", READ),
    "get_object": S3Operation("GET", READ),
    "put_object": S3Operation("PUT", WRITE, pinsChecksum=True),
    "delete_object": S3Operation("DELETE", DELETE),
    "create_multipart_upload": S3Operation("POST", WRITE, (("uploads", ""),), pinsChecksum=True),
    "upload_part": S3Operation("PUT", WRITE, needsUploadId=True),
    "complete_multipart_upload": S3Operation("POST", WRITE, needsUploadId=True),
    "abort_multipart_upload": S3Operation("DELETE", WRITE, needsUploadId=True),
    "list_objects": S3Operation("GET", READ, (("delimiter", "/"), ("list-type", "2")), onBucket=True),
    # unfinished uploads under a directory: whoever may create files there may see and abort them
    "list_multipart_uploads": S3Operation("GET", WRITE, (("uploads", ""),), onBucket=True),
}


def buildRequest(s3Method: str, key: str, params: dict | None, requireChecksum: bool = False) -> dict:
    """S_OK((httpMethod, key or None for the bucket, query, headers)) for an operation on ``key``.

    ``params``: ``Checksum`` (adler32, pinned as metadata on put / create),
    ``Size`` (pinned as Content-Length on put / part),
    ``UploadId`` and ``PartNumber`` (multipart), ``ContinuationToken`` and
    ``MaxKeys`` (listing; ``key`` is then the directory's prefix), ``KeyMarker`` and
    ``UploadIdMarker`` (listing unfinished multipart uploads). With
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
    if s3Method == "list_multipart_uploads":
        query["prefix"] = key
        for name, option in (("KeyMarker", "key-marker"), ("UploadIdMarker", "upload-id-marker")):
            if params.get(name):
                query[option] = str(params[name])
        return S_OK((operation.httpMethod, None, query, headers))
    if operation.onBucket:
        query["prefix"] = key
        query["max-keys"] = str(min(max(int(params.get("MaxKeys", 1000) or 1000), 1), 1000))
        if params.get("ContinuationToken"):
            query["continuation-token"] = str(params["ContinuationToken"])
        return S_OK((operation.httpMethod, None, query, headers))
    return S_OK((operation.httpMethod, key, query, headers))

"""``S3Storage``: the ``S3`` storage plugin, one bucket per storage element.

An LFN ``/vo/user/f`` lives at ``s3://host:port/<bucket>/vo/user/f``, under the
key ``vo/user/f``. This class maps URLs to keys, builds the S3 requests and reads
the answers; who authorises a request is a separate signer (``DirectSigner``
when the configuration holds the Aws keys), and the bytes move through one
shared urllib3 pool (``S3/HttpClient``). adler32 is computed while the bytes move,
stored as ``x-amz-meta-checksum`` on upload and verified on download. A download
whose body breaks is resumed from the byte reached, pinned to the same object by
its ETag; error answers are explained from S3's codes (``S3/Errors``).

Listings ask for ``encoding-type=url`` so that any key another tool wrote
(control characters included) reads back; a key that cannot be an LFN (``//``,
``.`` or ``..`` segments) is reported under ``NotLFNs``, never mapped to
another LFN. Many files are removed with DeleteObjects, 1,000 keys a request.
"""

from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote_plus

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import Adler32MD5, compareAdler, fileAdlerMD5, intAdlerToHex
from DIRAC.Core.Utilities.LFN import checkLFN
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Errors import s3Error
from DIRAC.Resources.Storage.S3.HttpClient import S3HttpClient, S3Response
from DIRAC.Resources.Storage.S3.Methods import (
    CHECKSUM_HEADER,
    MAX_DELETE_KEYS,
    OPERATIONS,
    PART_CHECKSUM_ALGORITHM,
    WRITE_URL_SECONDS,
    buildRequest,
    bytesContentMD5,
    canDeleteInBulk,
    completionBody,
    deleteObjectsBody,
)
from DIRAC.Resources.Storage.S3.Parts import (
    SMALL_BODY,
    ChecksummingReader,
    digestParts,
    downloadParts,
    receiveBody,
    receiveWhole,
    sendParts,
    spreadPartSize,
    uploadParts,
)
from DIRAC.Resources.Storage.S3.Settings import MAX_PRESIGN_SECONDS, S3Settings, parseS3Settings
from DIRAC.Resources.Storage.S3.Signers import GATEWAY_BATCH, GATEWAY_URL_SECONDS, DirectSigner, GatewaySigner
from DIRAC.Resources.Storage.S3.TransferSettings import MAX_OBJECT_SIZE, MiB
from DIRAC.Resources.Storage.StorageBase import StorageBase
from DIRAC.Resources.Storage.StreamedCopy import (
    MAX_BUFFERED_OBJECT,
    NOTHING_WRITTEN,
    BufferWriter,
    CopySource,
    checkCopiedAdler,
    objectBuffer,
    reframe,
)
from DIRAC.Resources.Storage.Utilities import (
    PendingContext,
    bulkResult,
    growingBatches,
    readWholeFile,
    runBulk,
    writeNewFile,
)

CHECKSUM_METADATA = "checksum"
#: the first S3 operation of each bulk call, asked from the gateway for all LFNs at once
_PREPARED_METHOD = {
    "exists": "head_object",
    "getFileMetadata": "head_object",
    "getFile": "get_object",
    "putFile": "put_object",
    "removeFile": "delete_object",
}
#: URLs handed to others (createPresignedUrl); through a gateway, each is asked for as ``presign:<method>``
PRESIGNABLE = ("get_object", "put_object", "head_object", "delete_object")
PRESIGN_PREFIX = "presign:"
ACCESS_URL_SECONDS = 24 * 3600
#: a URL prepared for a whole bulk call is used only this long; later items ask the gateway again
PREPARED_URL_SECONDS = WRITE_URL_SECONDS // 2
MAX_LIST_PAGES = 100000
#: a bulk remove's DeleteObjects requests in flight at once, and the fewest keys worth one request
DELETE_REQUESTS_IN_FLIGHT = 8
MIN_DELETE_BATCH = 100
#: a single PUT up to this size is read in one pass (checksum and body from the same bytes);
#: a larger one is streamed from the file after a first pass for its checksum
SINGLE_READ_BYTES = 1 * MiB

_clientsLock = threading.Lock()
_clients: dict[tuple, S3HttpClient] = {}
#: bulk calls whose URLs are asked from gateways at once (each call's batches one after the other)
GATEWAY_ASKERS = 8
_askers: ThreadPoolExecutor | None = None


def _gatewayAskers() -> ThreadPoolExecutor:
    """The threads that ask the gateway for the URLs of bulk calls (``GATEWAY_ASKERS`` calls at once).

    They last: each keeps its kept-alive RPC session (one per thread), so a bulk call does not
    pay a new TLS handshake with the gateway."""
    global _askers
    with _clientsLock:
        if _askers is None:
            _askers = ThreadPoolExecutor(max_workers=GATEWAY_ASKERS, thread_name_prefix="s3-gateway-urls")
        return _askers


def sharedHttpClient(settings: S3Settings, workers: int) -> S3HttpClient:
    """One HTTP client per endpoint and settings, shared by every SE object: its pool keeps a
    connection for each bulk worker and each part worker of a big transfer."""
    transfer = settings.transfer
    connections = workers + transfer.partWorkers
    key = (settings.endpoint, transfer.connectTimeout, transfer.readTimeout, transfer.retries, settings.verify)
    key += (connections,)
    with _clientsLock:
        if key not in _clients:
            _clients[key] = S3HttpClient(
                transfer.connectTimeout, transfer.readTimeout, transfer.retries, settings.verify, connections
            )
        return _clients[key]


def _parseXML(body: bytes) -> ElementTree.Element:
    """An S3 answer's XML with namespaces dropped: servers differ (s3rver uses a wrong one).

    Raises ``ElementTree.ParseError`` when the body is not XML.
    """
    root = ElementTree.fromstring(body)
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


def _findText(node: ElementTree.Element, name: str) -> str:
    return node.findtext(name) or ""


def _findAll(node: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return node.findall(name)


def _isoTime(text: str) -> datetime | None:
    """A listing's ISO 8601 time as an aware datetime (like HEAD's Last-Modified), None if absent."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _listingPage(body: bytes) -> dict:
    """S_OK((contents, prefixes, next token)) of a ListObjectsV2 answer, keys decoded.

    ``contents`` is ``[(key, <Contents> element)]``. S_ERROR when the body is not a
    listing (an ``<Error>`` in a 200, garbage) or says it is truncated without
    saying where to go on: a listing never silently ends early.
    """
    try:
        root = _parseXML(body)
    except ElementTree.ParseError as exc:
        return S_ERROR(DErrno.EIO, f"the listing is not XML ({exc})")
    if root.tag != "ListBucketResult":
        code = root.findtext("Code") or root.tag
        return S_ERROR(DErrno.EIO, f"the server answered {code} instead of a listing")
    decode = unquote_plus if _findText(root, "EncodingType") == "url" else str
    contents = [(decode(_findText(item, "Key")), item) for item in _findAll(root, "Contents")]
    prefixes = [decode(_findText(item, "Prefix")) for item in _findAll(root, "CommonPrefixes")]
    token = ""
    if _findText(root, "IsTruncated") == "true":
        token = _findText(root, "NextContinuationToken")
        if not token:
            return S_ERROR(DErrno.EIO, "the listing is truncated but gives no continuation token")
    return S_OK((contents, prefixes, token))


def _deleteResult(body: bytes) -> dict:
    """S_OK(({deleted key}, {key: (code, message)})) of a DeleteObjects answer; S_ERROR if it is not one."""
    try:
        root = _parseXML(body)
    except ElementTree.ParseError as exc:
        return S_ERROR(DErrno.EIO, f"the multi-object delete answer is not XML ({exc})")
    if root.tag != "DeleteResult":
        code = root.findtext("Code") or root.tag
        return S_ERROR(DErrno.EIO, f"the server answered {code} to a multi-object delete")
    deleted = {_findText(item, "Key") for item in _findAll(root, "Deleted")}
    errors = {
        _findText(item, "Key"): (_findText(item, "Code"), _findText(item, "Message"))
        for item in _findAll(root, "Error")
    }
    return S_OK((deleted, errors))


def deleteBatchSize(keys: int) -> int:
    """Keys per DeleteObjects request for a bulk remove of ``keys``: enough requests to keep
    ``DELETE_REQUESTS_IN_FLIGHT`` going (a server removes the keys of one request one after the
    other: rclone takes about 1 ms a key), none under ``MIN_DELETE_BATCH`` keys nor over S3's 1,000."""
    wanted = -(-keys // DELETE_REQUESTS_IN_FLIGHT)
    return max(1, min(MAX_DELETE_KEYS, max(MIN_DELETE_BATCH, wanted)))


def _isPrepared(context: Any, s3Method: str) -> bool:
    """True when ``context`` holds a fresh URL prepared for ``s3Method``."""
    return (
        isinstance(context, tuple) and context[0] == s3Method and time.monotonic() - context[2] < PREPARED_URL_SECONDS
    )


class S3Storage(StorageBase):
    """DIRAC storage plugin for S3-compatible object stores (AWS, Ceph, MinIO, WEKA, ECS)."""

    _INPUT_PROTOCOLS = ["s3"]
    #: requests in flight per bulk call (option MaxWorkers): S3 is far away, small requests mostly wait
    DEFAULT_WORKERS = 64
    STREAMED_COPY_SOURCE = True
    STREAMED_COPY_DESTINATION = True

    def __init__(self, storageName: str, parameters: dict):
        parsed = parseS3Settings(storageName, parameters)
        if parsed["OK"]:
            parameters = {**parameters, "Port": str(parsed["Value"].port), "Host": parsed["Value"].host}
        super().__init__(storageName, {**parameters, "Protocol": parameters.get("Protocol") or "s3"})
        self.pluginName = parameters.get("PluginName", "S3")
        if not parsed["OK"]:
            self.isok, self.errorMessage = False, parsed["Message"]
            return
        self.settings: S3Settings = parsed["Value"]
        self.http = sharedHttpClient(self.settings, self.maxWorkers)
        if self.settings.hasKeys:
            self.signer = DirectSigner(self.settings)
        else:
            self.signer = GatewaySigner(storageName, self._lfnToURL, self.settings.transfer.readTimeout)
        self._bucketSeen = False

    @classmethod
    def checkParameters(cls, storageName: str, parameters: dict) -> dict:
        """S_OK when the protocol section is usable; S_ERROR naming the SE and the option otherwise.

        Without the two Aws options the SE is used through the S3Gateway service.
        """
        parsed = parseS3Settings(storageName, parameters)
        return parsed if not parsed["OK"] else S_OK()

    @property
    def outputProtocols(self) -> list[str]:
        return ["s3", self.settings.scheme]

    # ------------------------------------------------------------------ requests

    def _send(
        self,
        s3Method: str,
        lfn: str,
        params: dict | None = None,
        context: Any = None,
        extraHeaders: dict | None = None,
        **sendOptions: Any,
    ) -> dict:
        """Authorise one S3 operation on ``lfn`` and send it; S_OK(S3Response).

        ``context`` may hold a URL prepared for the whole bulk call (``_prepare``)
        as ``(s3Method, (url, headers), preparedAt)``; it is used when the operation
        matches and it is fresh (gateway URLs that write live minutes).
        """
        if isinstance(self.signer, GatewaySigner) and s3Method in self.signer.answered:
            return self.signer.answerListing(s3Method, lfn, params)  # filtered by the catalog, never signed
        if _isPrepared(context, s3Method):
            authorised = S_OK(context[1])
        else:
            key = self.settings.listPrefix(lfn) if OPERATIONS[s3Method].onBucket else self.settings.objectKey(lfn)
            authorised = self.signer.authorise(s3Method, lfn, key, params)
        if not authorised["OK"]:
            return authorised
        url, headers = authorised["Value"]
        headers = {**headers, **(extraHeaders or {})}
        return self.http.send(OPERATIONS[s3Method].httpMethod, url, headers, **sendOptions)

    def _prepare(self, operation: str, items: dict[str, Any], **options: Any) -> dict:
        """With a gateway: the URLs of a whole bulk call in few requests (and its permission checks).

        The LFNs are asked in growing batches (``maxWorkers`` first, then twice as many each
        time up to ``GATEWAY_BATCH``), one after the other by one thread of a small lasting
        pool (its RPC connection stays open from call to call): the bulk call's workers start
        on the first batch while the gateway signs the next ones.
        """
        if operation.startswith(PRESIGN_PREFIX):
            s3Method = operation[len(PRESIGN_PREFIX) :]
        else:
            s3Method = _PREPARED_METHOD.get(operation)
        if not self.signer.batchesRequests or s3Method is None or not items:
            return super()._prepare(operation, items, **options)
        expiration = options.get("expiration", GATEWAY_URL_SECONDS)
        batches = [(batch, Future()) for batch in growingBatches(list(items), self.maxWorkers, GATEWAY_BATCH)]

        def askInTurn() -> None:
            for batch, answered in batches:
                try:
                    answered.set_result(
                        self._prepareBatch(operation, s3Method, {lfn: items[lfn] for lfn in batch}, expiration)
                    )
                except Exception as exc:  # noqa: BLE001 - a bug fails this batch's items, never hangs them
                    answered.set_exception(exc)

        _gatewayAskers().submit(askInTurn)
        return S_OK({lfn: PendingContext(answered, lfn) for batch, answered in batches for lfn in batch})

    def _prepareBatch(self, operation: str, s3Method: str, items: dict[str, Any], expiration: int) -> dict:
        """{lfn: context} for one batch of a bulk call: ``(s3Method, (url, headers), preparedAt)``,
        an S_ERROR (refused, unreadable) or None (a multipart upload asks its URLs step by step)."""
        requests: dict[str, tuple[str, dict | None]] = {}
        answers: dict[str, Any] = {}
        for lfn, value in items.items():
            params = None
            if operation == "putFile":
                size = os.path.getsize(value)
                if size > self.settings.transfer.multipartThreshold:
                    answers[lfn] = None  # multipart: its URLs are asked step by step
                    continue
                digests = fileAdlerMD5(value)
                if digests is False:
                    answers[lfn] = S_ERROR(DErrno.EACCES, f"cannot read {value}")
                    continue
                params = {"Checksum": digests[0], "Size": size, "ContentMD5": digests[1]}
            requests[lfn] = (self.settings.objectKey(lfn), params)
        prepared = self.signer.authoriseMany(s3Method, requests, expiration) if requests else S_OK({})
        if not prepared["OK"]:
            return {**answers, **dict.fromkeys(requests, prepared)}
        preparedAt = time.monotonic()
        for lfn, result in prepared["Value"].items():
            answers[lfn] = (s3Method, result["Value"], preparedAt) if result["OK"] else result
        return answers

    def _failure(self, response: S3Response, lfn: str | None, action: str) -> dict:
        """S_ERROR a person can act on, for a failed answer (``S3/Errors`` explains each S3 code).

        A 404 without a body (HEAD) may mean a missing object or a missing bucket: the
        bucket is checked, and a check that cannot reach the server says so.
        """
        code = response.errorCode()
        where = f"{lfn} on SE {self.name}" if lfn else f"SE {self.name}"
        if response.status == 404 and not code:
            bucket = self._bucketExists()
            if not bucket["OK"]:
                return S_ERROR(bucket["Errno"], f"cannot {action} {where}: no such file or bucket, {bucket['Message']}")
            if bucket["Value"] is False:
                code = "NoSuchBucket"
        serverDate = response.headers.get("date", "")
        return s3Error(response.status, code, response.errorMessage(), serverDate, self.settings, action, where)

    def _bucketExists(self) -> dict:
        """S_OK(True/False) when the server says whether the bucket exists, S_OK(None) when it
        will not say (e.g. listing refused); S_ERROR when the server cannot be reached.
        Asked again only until it answered True."""
        if self._bucketSeen:
            return S_OK(True)
        sent = self._send("list_objects", "/", {"MaxKeys": 1})
        if not sent["OK"]:
            return S_ERROR(sent["Errno"], f"the bucket check failed: {sent['Message']}")
        response = sent["Value"]
        self._bucketSeen = response.ok
        if response.ok or response.errorCode() == "NoSuchBucket":
            return S_OK(response.ok)
        return S_OK(None)

    # ------------------------------------------------------------------ metadata

    def _metadataFrom(self, response: S3Response) -> dict:
        userMeta = response.userMetadata()
        checksum = userMeta.get(CHECKSUM_METADATA, "")
        try:
            modTime = parsedate_to_datetime(response.headers.get("last-modified", ""))
        except (TypeError, ValueError):
            modTime = None
        return {
            "Size": int(response.headers.get("content-length", 0)),
            "Checksum": checksum,
            "ChecksumType": "ADLER32" if checksum else "",
            "ModTime": modTime,
            "File": True,
            "Directory": False,
            "Exists": True,
            "Mode": 0o644,
            "Accessible": True,
            "Readable": True,
            "Writeable": True,
        }

    def _getMetadata(self, lfn: str, context: Any) -> dict:
        sent = self._send("head_object", lfn, context=context)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        if response.status != 200:
            if response.status == 404 and self._isDirectory(lfn, context).get("Value"):
                return S_OK({"File": False, "Directory": True, "Exists": True, "Size": 0, "Accessible": True})
            return self._failure(response, lfn, "get metadata of")
        return S_OK(self._metadataFrom(response))

    def _exists(self, lfn: str, context: Any) -> dict:
        sent = self._send("head_object", lfn, context=context)
        if not sent["OK"]:
            return sent
        if sent["Value"].status == 200:
            return S_OK(True)
        failure = self._failure(sent["Value"], lfn, "check")
        if DErrno.cmpError(failure, DErrno.ENOENT):
            return self._isDirectory(lfn, context)
        return failure

    # ------------------------------------------------------------------ transfers

    def _putFile(self, lfn: str, localFile: str, size: int, context: Any) -> dict:
        """One PUT up to the multipart threshold (at most 5 GiB), in parts above it.

        A small file is read once; a bigger one is read first for its checksum
        (the PUT pins it as metadata) and then streamed from the file, its adler32
        computed again as it goes: if the file changed meanwhile the object is
        removed and the upload fails.
        """
        if size > self.settings.transfer.multipartThreshold:
            return self._putInParts(lfn, localFile, size)
        streamed: ChecksummingReader | None = None
        if size <= SINGLE_READ_BYTES:
            try:
                body: Any = readWholeFile(localFile)
            except OSError as exc:
                return S_ERROR(DErrno.EACCES, f"cannot read {localFile}: {exc.strerror}")
            digests = Adler32MD5()
            digests.update(body)
            checksum, md5, size = digests.hexdigest(), digests.md5Base64(), len(body)
        else:
            digests = fileAdlerMD5(localFile)
            if digests is False:
                return S_ERROR(DErrno.EACCES, f"cannot read {localFile}")
            checksum, md5 = digests
            try:
                body = streamed = ChecksummingReader(localFile, size)
            except OSError as exc:
                return S_ERROR(DErrno.EACCES, f"cannot read {localFile}: {exc.strerror}")
        changed = S_ERROR(DErrno.EBADCKS, f"{localFile} changed while being uploaded; nothing was written")
        if isinstance(context, tuple) and context[1][1].get(CHECKSUM_HEADER) != checksum:
            return changed
        try:
            put = self._sendPut(lfn, checksum, md5, size, body, context)
        finally:
            if streamed is not None:
                streamed.close()
        if not put["OK"]:
            return put
        landedNow = put["Value"]
        if landedNow and streamed is not None:
            if streamed.size != size or not compareAdler(streamed.hexdigest(), checksum):
                self._removeFile(lfn, None)
                return changed
        return S_OK(size)

    def _sendPut(self, lfn: str, checksum: str, md5: str, size: int, body: Any, context: Any = None) -> dict:
        """One PUT pinning the checksum metadata, size and Content-MD5.

        S_OK(True) when it was answered 200; S_OK(False) when our first attempt landed, its
        answer was lost and If-None-Match refused the resend (the object holds these bytes).
        """
        params = {"Checksum": checksum, "Size": size, "ContentMD5": md5}
        sent = self._send("put_object", lfn, params, context, body=body)
        if not sent["OK"]:
            return sent
        if sent["Value"].status == 412 and sent["Value"].attempts > 1 and self._holds(lfn, checksum, size):
            return S_OK(False)
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], lfn, "upload")
        return S_OK(True)

    def _holds(self, lfn: str, checksum: str, size: int) -> bool:
        """True when the object at ``lfn`` has ``size`` bytes and adler32 ``checksum``."""
        head = self._send("head_object", lfn)
        if not head["OK"] or not head["Value"].ok:
            return False
        metadata = self._metadataFrom(head["Value"])
        return metadata["Size"] == size and compareAdler(metadata["Checksum"] or "", checksum)

    def _putInParts(self, lfn: str, localFile: str, size: int) -> dict:
        """Multipart upload; the object carries its checksum from the moment it exists.

        The checksum must be given when the upload starts, so a big file is read once
        beforehand (``digestParts``: its parts hashed in parallel, adler32, CRC32 and each
        part's MD5), then again (usually from the page cache) as its parts are sent, each
        part refused if its CRC32 changed since the first pass. Setting the checksum after
        the upload instead would need a server-side self-copy: slower (measured), not
        atomic, and refused by S3 above 5 GiB. A file over S3's 5 TiB limit is refused
        before anything is sent.
        """
        if size > MAX_OBJECT_SIZE:
            return S_ERROR(
                DErrno.EFBIG, f"{localFile} has {size} bytes; an S3 object holds at most 5 TiB: nothing was sent"
            )
        transfer = self.settings.transfer
        partSize = spreadPartSize(size, transfer.partSize, transfer.partWorkers)
        # With keys each part is bound by its CRC32 (as boto3 does); a gateway's part URL pins its MD5.
        byCRC32 = isinstance(self.signer, DirectSigner)
        digested = digestParts(localFile, size, partSize, transfer.partWorkers, withMD5=not byCRC32)
        if not digested["OK"]:
            return digested
        upfront, digests = intAdlerToHex(digested["Value"][0]), digested["Value"][1]
        self._abortEarlierUploads(lfn)
        started = self._startMultipartUpload(lfn, upfront, PART_CHECKSUM_ALGORITHM if byCRC32 else "")
        if not started["OK"]:
            return started
        uploadId = started["Value"]
        abort = {"UploadId": uploadId}

        def sendPart(number: int, data: bytes, md5: str) -> dict:
            binding = {"ChecksumCRC32": digests[number].checksumCRC32} if byCRC32 else {"ContentMD5": md5}
            return self._uploadPart(lfn, uploadId, number, data, binding)

        uploaded = uploadParts(localFile, size, partSize, sendPart, transfer.partWorkers, digests)
        if not uploaded["OK"]:
            self._send("abort_multipart_upload", lfn, abort)
            if DErrno.cmpError(uploaded, DErrno.EBADCKS):
                return S_ERROR(DErrno.EBADCKS, f"{uploaded['Message']}; nothing was written")
            return uploaded
        parts = uploaded["Value"][0]
        if byCRC32:
            parts = [{**part, "ChecksumCRC32": digests[part["PartNumber"]].checksumCRC32} for part in parts]
        completed = self._completeMultipartUpload(lfn, uploadId, parts)
        return S_OK(size) if completed["OK"] else completed

    def _uploadPart(self, lfn: str, uploadId: str, number: int, data: Any, binding: dict) -> dict:
        """S_OK(ETag) of part ``number`` of upload ``uploadId``; ``binding`` is what ties the bytes
        (``ContentMD5``, or ``ChecksumCRC32`` for an upload created with that algorithm)."""
        params = {"UploadId": uploadId, "PartNumber": number, "Size": len(data), **binding}
        sent = self._send("upload_part", lfn, params, body=data)
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], lfn, f"upload part {number} of")
        return S_OK(sent["Value"].headers.get("etag", ""))

    def _startMultipartUpload(self, lfn: str, checksum: str, partChecksum: str = "") -> dict:
        """S_OK(UploadId) of a new multipart upload of ``lfn`` whose object will carry ``checksum``;
        with ``partChecksum`` (``CRC32``) each part must carry that checksum (direct uploads)."""
        params = {"Checksum": checksum, **({"ChecksumAlgorithm": partChecksum} if partChecksum else {})}
        created = self._send("create_multipart_upload", lfn, params)
        if not created["OK"]:
            return created
        if created["Value"].status != 200:
            return self._failure(created["Value"], lfn, "start a multipart upload of")
        try:
            uploadId = _findText(_parseXML(created["Value"].body), "UploadId")
        except ElementTree.ParseError:
            uploadId = ""
        if not uploadId:
            return S_ERROR(DErrno.EIO, f"cannot start a multipart upload of {lfn} on SE {self.name}: no UploadId")
        return S_OK(uploadId)

    def _completeMultipartUpload(self, lfn: str, uploadId: str, parts: list[dict]) -> dict:
        """S_OK() once the upload is completed from ``[{'PartNumber', 'ETag'[, 'ChecksumCRC32']}]``;
        else S_ERROR, the upload aborted."""
        abort = {"UploadId": uploadId}
        completed = self._send("complete_multipart_upload", lfn, abort, body=completionBody(parts))
        if not completed["OK"] or completed["Value"].status != 200 or b"<Error>" in completed["Value"].body:
            self._send("abort_multipart_upload", lfn, abort)
            return completed if not completed["OK"] else self._failure(completed["Value"], lfn, "complete upload of")
        return S_OK()

    # ------------------------------------------------------------------ server-side copy (S3/ServerSideCopy)

    def canCopyServerSideFrom(self, source: StorageBase) -> bool:
        """True when ``source`` is an S3 SE on this one's S3 service that the same keys (or the gateway) reach."""
        from DIRAC.Resources.Storage.S3.ServerSideCopy import canCopy  # imports this module

        return canCopy(self, source)

    def copyServerSide(self, source: S3Storage, items: dict) -> dict[str, dict]:
        """{lfn: S_OK(size) or S_ERROR}: copy each ``{lfn: {'Size', 'Checksum'}}`` from ``source`` into
        this SE inside the S3 service, no byte through the client (``S3/ServerSideCopy``)."""
        from DIRAC.Resources.Storage.S3.ServerSideCopy import ServerSideCopy  # imports this module

        return ServerSideCopy(self, source).copy(items)

    # ------------------------------------------------------------------ unfinished multipart uploads

    def listMultipartUploads(self, lfn: str) -> dict:
        """S_OK([{'LFN', 'UploadId', 'Initiated'}]): the unfinished multipart uploads under directory ``lfn``.

        A server that keeps none may answer NoSuchUpload (rclone): that is an empty list.
        """
        uploads: list[dict] = []
        params: dict[str, str] = {}
        for _page in range(MAX_LIST_PAGES):
            sent = self._send("list_multipart_uploads", lfn, params)
            if not sent["OK"]:
                return sent
            response = sent["Value"]
            if response.status == 404 and response.errorCode() == "NoSuchUpload":
                return S_OK(uploads)
            if response.status != 200:
                return self._failure(response, lfn, "list the unfinished uploads under")
            try:
                root = _parseXML(response.body)
            except ElementTree.ParseError as exc:
                return S_ERROR(DErrno.EIO, f"cannot list the unfinished uploads under {lfn}: not XML ({exc})")
            for item in _findAll(root, "Upload"):
                mapped = self._keyToLFN(_findText(item, "Key"), isPrefix=False)
                if not mapped["OK"]:
                    self.log.warn(f"unfinished upload of a key no LFN can stand for: {_findText(item, 'Key')!r}")
                    continue
                uploads.append(
                    {
                        "LFN": mapped["Value"],
                        "UploadId": _findText(item, "UploadId"),
                        "Initiated": _isoTime(_findText(item, "Initiated")),
                    }
                )
            params = {
                "KeyMarker": _findText(root, "NextKeyMarker"),
                "UploadIdMarker": _findText(root, "NextUploadIdMarker"),
            }
            if _findText(root, "IsTruncated") != "true" or not params["KeyMarker"]:
                return S_OK(uploads)
        return S_ERROR(DErrno.EFBIG, f"unfinished uploads under {lfn} on SE {self.name}: over {MAX_LIST_PAGES} pages")

    def abortMultipartUpload(self, lfn: str, uploadId: str) -> dict:
        """Abort one unfinished multipart upload of ``lfn`` (its parts are freed); one already gone is fine."""
        sent = self._send("abort_multipart_upload", lfn, {"UploadId": uploadId})
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        if response.status in (200, 204) or response.errorCode() == "NoSuchUpload":
            return S_OK()
        return self._failure(response, lfn, "abort an unfinished upload of")

    def _abortEarlierUploads(self, lfn: str) -> None:
        """Abort the unfinished uploads of ``lfn`` an earlier run left (a killed client); problems are logged."""
        listed = self.listMultipartUploads(os.path.dirname(lfn) or "/")
        if not listed["OK"]:
            self.log.warn("Cannot look for earlier unfinished uploads", f"{lfn}: {listed['Message']}")
            return
        for upload in listed["Value"]:
            if upload["LFN"] == lfn:
                aborted = self.abortMultipartUpload(lfn, upload["UploadId"])
                if aborted["OK"]:
                    self.log.info("Aborted an earlier unfinished upload", f"{lfn} ({upload['UploadId']})")
                else:
                    self.log.warn("Cannot abort an earlier unfinished upload", aborted["Message"])

    def _openObject(self, lfn: str, context: Any, action: str) -> dict:
        """S_OK((streamed GET answer, metadata, fetchRange)) of ``lfn``: ``fetchRange(offset,
        length)`` reads later byte ranges pinned to the object answered (``If-Match`` its ETag)."""
        sent = self._send("get_object", lfn, context=context, stream=True)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        if not response.ok:
            return self._failure(response, lfn, action)
        etag = response.headers.get("etag", "")

        def fetchRange(offset: int, length: int) -> dict:
            return self._getRange(lfn, offset, length, context, etag)

        return S_OK((response, self._metadataFrom(response), fetchRange))

    def _getFile(self, lfn: str, localFile: str, context: Any) -> dict:
        opened = self._openObject(lfn, context, "download")
        if not opened["OK"]:
            return opened
        response, metadata, fetchRange = opened["Value"]
        size, transfer = metadata["Size"], self.settings.transfer
        data = None
        if size > transfer.multipartThreshold and response.headers.get("accept-ranges") == "bytes":
            response.abandon()
            partSize = spreadPartSize(size, transfer.partSize, transfer.partWorkers)
            fetched = downloadParts(localFile, size, partSize, fetchRange, transfer.retries, transfer.partWorkers)
        elif size <= SMALL_BODY:  # in memory, checked before the file is made: one open, write and close
            fetched = receiveWhole(response, size, fetchRange, transfer.retries)
            if fetched["OK"]:
                data, adler = fetched["Value"]
                fetched = S_OK(adler)
        else:
            try:
                with open(localFile, "wb") as handle:
                    fetched = receiveBody(response, 0, size, handle, fetchRange, transfer.retries)
            except OSError as exc:
                response.abandon()
                return S_ERROR(DErrno.EIO, f"cannot write {localFile}: {exc.strerror}")
        if not fetched["OK"]:
            return S_ERROR(fetched["Errno"], f"download of {lfn} from SE {self.name} failed: {fetched['Message']}")
        actual = intAdlerToHex(fetched["Value"])
        if metadata["Checksum"] and not compareAdler(actual, metadata["Checksum"]):
            return S_ERROR(
                DErrno.EBADCKS,
                f"download of {lfn} is corrupt: adler32 {actual}, stored checksum {metadata['Checksum']}",
            )
        if data is not None:
            try:
                writeNewFile(localFile, data)
            except OSError as exc:
                return S_ERROR(DErrno.EIO, f"cannot write {localFile}: {exc.strerror}")
        return S_OK(size)

    def _getRange(self, lfn: str, offset: int, length: int, context: Any, etag: str = "") -> dict:
        """S_OK(streamed answer) for ``length`` bytes from ``offset``, of the object whose ETag is ``etag``."""
        rangeHeaders = {"Range": f"bytes={offset}-{offset + length - 1}"}
        if etag:
            rangeHeaders["If-Match"] = etag
        sent = self._send("get_object", lfn, None, context, rangeHeaders, stream=True)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        # 206 is the standard answer; some servers (rclone) say 200 but do send just the range.
        isRange = response.headers.get("content-range", "").startswith(f"bytes {offset}-")
        if not response.ok or not isRange:
            if response.ok:
                response.abandon()
            if response.status == 412:
                return S_ERROR(DErrno.EIO, f"{lfn} on SE {self.name} changed while being downloaded")
            return self._failure(response, lfn, "download a part of")
        return sent

    # ------------------------------------------------------------------ streamed copy seams

    def _openCopySource(self, lfn: str, context: Any) -> dict:
        """S_OK(CopySource) of ``lfn``: its GET is sent (streamed); every range read later is pinned
        to the object it answered by its ETag (``If-Match``: a changed object answers 412)."""
        opened = self._openObject(lfn, context, "read")
        if not opened["OK"]:
            return opened
        response, metadata, fetchRange = opened["Value"]
        description = f"{lfn} on SE {self.name}"
        retries = self.settings.transfer.retries
        return S_OK(CopySource(description, metadata["Size"], metadata["Checksum"], fetchRange, retries, response))

    def _writeCopy(self, lfn: str, source: CopySource, checksum: str) -> dict:
        """Write a streamed copy's bytes; the object appears only once their adler32 is ``checksum``.

        Up to the multipart threshold (and ``MAX_BUFFERED_OBJECT``) the object is read into
        memory (within the process's ``OBJECT_BUFFER_BUDGET``), checked, and sent as one PUT
        with its Content-MD5. Above it, a multipart upload (``_copyInParts``).
        """
        size, transfer = source.size, self.settings.transfer
        if size > MAX_OBJECT_SIZE:
            return S_ERROR(DErrno.EFBIG, f"{source.description} has {size} bytes, over S3's 5 TiB; {NOTHING_WRITTEN}")
        if size > min(transfer.multipartThreshold, MAX_BUFFERED_OBJECT):
            return self._copyInParts(lfn, source, checksum)
        with objectBuffer(size) as buffer:
            read = source.readInto(0, size, BufferWriter(buffer, f"a buffer for {source.description}"))
            if not read["OK"]:
                return reframe(read, after=NOTHING_WRITTEN)
            matches = checkCopiedAdler(read["Value"], checksum, source)
            if not matches["OK"]:
                return reframe(matches, after=NOTHING_WRITTEN)
            put = self._sendPut(lfn, checksum, bytesContentMD5(buffer), size, buffer)
        return S_OK(size) if put["OK"] else reframe(put, after=NOTHING_WRITTEN)

    def _copyInParts(self, lfn: str, source: CopySource, checksum: str) -> dict:
        """S_OK(size) after a multipart upload of ``source`` whose object carries ``checksum``.

        Each part is fetched from the source by range and sent, in parallel, each held in
        memory once (at most part size x part workers: ``Parts.sendParts``); the upload is
        completed only when the parts' combined adler32 is ``checksum``, and aborted on any
        failure. Unfinished uploads an earlier run left for ``lfn`` are aborted first; a
        completion whose answer was lost counts when the object holds the size and checksum.
        """
        size, transfer = source.size, self.settings.transfer
        source.releaseOpenAnswer()
        self._abortEarlierUploads(lfn)
        started = self._startMultipartUpload(lfn, checksum)
        if not started["OK"]:
            return reframe(started, after=NOTHING_WRITTEN)
        uploadId = started["Value"]

        def aborted(failure: dict) -> dict:
            gone = self.abortMultipartUpload(lfn, uploadId)
            outcome = "the multipart upload was aborted" if gone["OK"] else f"aborting it failed: {gone['Message']}"
            return reframe(failure, after=outcome)

        def sendPart(number: int, data: bytes, md5: str) -> dict:
            return self._uploadPart(lfn, uploadId, number, data, {"ContentMD5": md5})

        uploaded = sendParts(size, transfer.partSize, source.readBytes, sendPart, transfer.partWorkers)
        if not uploaded["OK"]:
            return aborted(uploaded)
        parts, adler = uploaded["Value"]
        matches = checkCopiedAdler(adler, checksum, source)
        if not matches["OK"]:
            return aborted(matches)
        completed = self._send("complete_multipart_upload", lfn, {"UploadId": uploadId}, body=completionBody(parts))
        if not completed["OK"] or completed["Value"].status != 200 or b"<Error>" in completed["Value"].body:
            if self._holds(lfn, checksum, size):
                return S_OK(size)  # it was completed, its answer was lost
            return aborted(
                completed if not completed["OK"] else self._failure(completed["Value"], lfn, "complete upload of")
            )
        return S_OK(size)

    def _removeFile(self, lfn: str, context: Any) -> dict:
        sent = self._send("delete_object", lfn, context=context)
        if not sent["OK"]:
            return sent
        if sent["Value"].status in (200, 204):
            return S_OK(True)
        failure = self._failure(sent["Value"], lfn, "remove")
        return S_OK(True) if DErrno.cmpError(failure, DErrno.ENOENT) else failure

    def removeFile(self, path: Any) -> dict:
        """Bulk: remove each file; a file already gone counts as removed.

        Two or more files go as DeleteObjects requests (1,000 keys each, in parallel),
        each key's outcome mapped to ``Successful`` or ``Failed``.
        """
        mapped = self._mapURLs(path)
        if not mapped["OK"]:
            return mapped
        urls, failed = mapped["Value"]
        if len(urls) < 2:
            return super().removeFile(path)
        urlsOf: dict[str, list[str]] = {}
        for url, (lfn, _value) in urls.items():
            urlsOf.setdefault(lfn, []).append(url)
        successful = {}
        for lfn, result in self._removeFiles(list(urlsOf), None).items():
            for url in urlsOf[lfn]:
                if result["OK"]:
                    successful[url] = True
                else:
                    failed[url] = result["Message"]
        return bulkResult(successful, failed)

    def _removeFiles(self, lfns: list[str], context: Any) -> dict[str, dict]:
        """{lfn: S_OK(True) or S_ERROR}: DeleteObjects for keys XML can name, single DELETEs for the rest."""
        inBulk = [lfn for lfn in lfns if canDeleteInBulk(self.settings.objectKey(lfn))]
        if len(inBulk) < 2:
            inBulk = []
        bulkSet = set(inBulk)
        alone = [lfn for lfn in lfns if lfn not in bulkSet]
        step = deleteBatchSize(len(inBulk))
        batches = [(str(start), inBulk[start : start + step]) for start in range(0, len(inBulk), step)]
        results: dict[str, dict] = {}
        batchResults, batchFailures = runBulk(
            batches, lambda _n, batch: S_OK(self._deleteBatch(batch)), self.maxWorkers
        )
        for answers in batchResults.values():
            results.update(answers)
        for number, message in batchFailures.items():
            results.update(dict.fromkeys(dict(batches)[number], S_ERROR(DErrno.EIO, message)))
        single, singleFailures = runBulk(
            ((lfn, None) for lfn in alone), lambda lfn, _v: self._removeFile(lfn, context), self.maxWorkers
        )
        results.update({lfn: S_OK(value) for lfn, value in single.items()})
        results.update({lfn: S_ERROR(DErrno.EIO, message) for lfn, message in singleFailures.items()})
        return results

    def _deleteBatch(self, lfns: list[str]) -> dict[str, dict]:
        """{lfn: S_OK(True) or S_ERROR} for at most 1,000 LFNs removed by one DeleteObjects request."""
        keys = {lfn: self.settings.objectKey(lfn) for lfn in lfns}
        authorised = self.signer.authoriseDelete(keys)
        if not authorised["OK"]:
            return dict.fromkeys(lfns, authorised)
        url, headers, allowed, answers = authorised["Value"]
        if not allowed:
            return answers
        lfnOfKey = {keys[lfn]: lfn for lfn in allowed}
        # removing a key twice does no harm: the request may be resent like a DELETE
        sent = self.http.send("POST", url, headers, body=deleteObjectsBody(list(lfnOfKey)), idempotent=True)
        if not sent["OK"]:
            return {**answers, **dict.fromkeys(allowed, sent)}
        response = sent["Value"]
        if response.status != 200:
            return {
                **answers,
                **dict.fromkeys(allowed, self._failure(response, None, f"remove {len(allowed)} files from")),
            }
        parsed = _deleteResult(response.body)
        if not parsed["OK"]:
            failure = S_ERROR(DErrno.EIO, f"SE {self.name}: {parsed['Message']}; nothing known removed")
            return {**answers, **dict.fromkeys(allowed, failure)}
        deleted, errors = parsed["Value"]
        for key, lfn in lfnOfKey.items():
            if key in deleted or errors.get(key, ("", ""))[0] == "NoSuchKey":
                answers[lfn] = S_OK(True)
            elif key in errors:
                code, message = errors[key]
                answers[lfn] = S_ERROR(DErrno.EIO, f"cannot remove {lfn} on SE {self.name}: {code} {message}".strip())
            else:
                answers[lfn] = S_ERROR(DErrno.EIO, f"cannot remove {lfn} on SE {self.name}: the server did not say")
        return answers

    # ------------------------------------------------------------------ directories (prefixes)

    def _listPage(self, lfn: str, token: str, maxKeys: int) -> dict:
        sent = self._send("list_objects", lfn, {"ContinuationToken": token, "MaxKeys": maxKeys})
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], lfn, "list")
        page = _listingPage(sent["Value"].body)
        if not page["OK"]:
            return S_ERROR(DErrno.EIO, f"cannot list {lfn} on SE {self.name}: {page['Message']}")
        return page

    def _keyToLFN(self, key: str, isPrefix: bool) -> dict:
        """S_OK(LFN) of a listed key (or common prefix); S_ERROR when no LFN can stand for it."""
        name = key[len(self.settings.keyPrefix) :] if key.startswith(self.settings.keyPrefix) else ""
        if isPrefix:
            name = name[:-1] if name.endswith("/") else ""
        if not name or name.endswith("/") or not checkLFN("/" + name)["OK"]:
            return S_ERROR(DErrno.EINVAL, "cannot be an LFN (empty, '.' or '..' path segment)")
        return S_OK("/" + name)

    def _listDirectory(self, lfn: str, context: Any) -> dict:
        prefix, token = self.settings.listPrefix(lfn), ""
        files: dict[str, dict] = {}
        subDirs: list[str] = []
        notLFNs: dict[str, str] = {}
        for _page in range(MAX_LIST_PAGES):
            page = self._listPage(lfn, token, 1000)
            if not page["OK"]:
                return page
            contents, prefixes, token = page["Value"]
            for key, item in contents:
                if key == prefix:
                    continue  # a "folder" marker object some tools write
                mapped = self._keyToLFN(key, isPrefix=False)
                if not mapped["OK"]:
                    notLFNs[key] = mapped["Message"]
                    continue
                files[mapped["Value"]] = {
                    "Size": int(_findText(item, "Size") or 0),
                    "ModTime": _isoTime(_findText(item, "LastModified")),
                    "File": True,
                    "Directory": False,
                    "Accessible": True,
                    "Mode": 0o644,
                }
            for key in prefixes:
                mapped = self._keyToLFN(key, isPrefix=True)
                if mapped["OK"]:
                    subDirs.append(mapped["Value"])
                else:
                    notLFNs[key] = mapped["Message"]
            if not token:
                if notLFNs:
                    self.log.warn(
                        f"{lfn} on SE {self.name} holds keys no LFN can stand for:", ", ".join(map(repr, notLFNs))
                    )
                return S_OK((files, subDirs, notLFNs))
        return S_ERROR(DErrno.EFBIG, f"listing {lfn} on SE {self.name} has more than {MAX_LIST_PAGES} pages")

    def _isDirectory(self, lfn: str, context: Any) -> dict:
        if lfn == "/":
            bucket = self._bucketExists()
            if not bucket["OK"]:
                return bucket
            return self._bucketMissing() if bucket["Value"] is False else S_OK(True)
        page = self._listPage(lfn, "", 1)
        if not page["OK"]:
            return page
        contents, prefixes, _token = page["Value"]
        return S_OK(bool(contents or prefixes))

    def _bucketMissing(self) -> dict:
        message = f"SE {self.name}: bucket {self.settings.bucket} does not exist at {self.settings.endpoint}"
        return S_ERROR(DErrno.ECONF, message)

    def _createDirectory(self, lfn: str, context: Any) -> dict:
        return S_OK(True)

    # ------------------------------------------------------------------ URLs for others

    def createPresignedUrl(self, urls: Any, s3_method: str, expiration: int = 3600) -> dict:
        """Bulk: a URL that performs ``s3_method`` (``get_object``, ``put_object``, ``head_object``,
        ``delete_object``) on each object without keys, valid ``expiration`` seconds."""
        if s3_method not in PRESIGNABLE:
            return S_ERROR(DErrno.EINVAL, f"unknown S3 method {s3_method!r}; use one of {', '.join(PRESIGNABLE)}")
        if not isinstance(expiration, int) or not 0 < expiration <= MAX_PRESIGN_SECONDS:
            return S_ERROR(DErrno.EINVAL, f"expiration must be 1..{MAX_PRESIGN_SECONDS} seconds, not {expiration!r}")

        if not self.signer.batchesRequests:

            def presign(lfn: str, _value: Any, _context: Any) -> dict:
                built = buildRequest(s3_method, self.settings.objectKey(lfn), None)
                if not built["OK"]:
                    return built
                method, key, query, headers = built["Value"]
                signed = self.signer.presign(method, key, expiration, query, headers)
                return S_OK(signed["Value"][0]) if signed["OK"] else signed

            return self._fanOut(urls, "createPresignedUrl", presign)
        return self._fanOut(
            urls, PRESIGN_PREFIX + s3_method, lambda _lfn, _v, context: S_OK(context[1][0]), expiration=expiration
        )

    def getTransportURL(self, path: Any, protocols: list[str] | str | bool = False) -> dict:
        """Bulk: ``s3`` gives the native URL; ``https``/``http`` a presigned GET valid 24 hours."""
        wanted = [protocols] if isinstance(protocols, str) else list(protocols or ["s3"])
        for protocol in wanted:
            if protocol == "s3":
                return super().getTransportURL(path, ["s3"])
            if protocol == self.settings.scheme:
                return self.createPresignedUrl(path, "get_object", ACCESS_URL_SECONDS)
        offered = ", ".join(self.outputProtocols)
        return S_ERROR(DErrno.EPROTONOSUPPORT, f"SE {self.name} offers {offered}, not {', '.join(map(str, wanted))}")

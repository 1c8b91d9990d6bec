"""``S3Storage``: the ``S3`` storage plugin, one bucket per storage element.

An LFN ``/vo/user/f`` lives at ``s3://host:port/<bucket>/vo/user/f``, under the
key ``vo/user/f``. This class maps URLs to keys, builds the S3 requests and reads
the answers; who authorises a request is a separate signer (``DirectSigner``
when the configuration holds the Aws keys), and the bytes move through one
shared keep-alive HTTP executor. adler32 is computed while the bytes move,
stored as ``x-amz-meta-checksum`` on upload and verified on download.
"""

from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ElementTree
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import Adler32, Adler32MD5, compareAdler, fileAdler, fileAdlerMD5, intAdlerToHex
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.HttpClient import S3HttpClient, S3Response
from DIRAC.Resources.Storage.S3.Methods import CHECKSUM_HEADER, OPERATIONS, WRITE_URL_SECONDS, buildRequest
from DIRAC.Resources.Storage.S3.Parts import downloadParts, uploadParts
from DIRAC.Resources.Storage.S3.Settings import MAX_PRESIGN_SECONDS, S3Settings, parseS3Settings
from DIRAC.Resources.Storage.S3.Signers import GATEWAY_URL_SECONDS, DirectSigner, GatewaySigner
from DIRAC.Resources.Storage.StorageBase import StorageBase

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
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

_clientsLock = threading.Lock()
_clients: dict[tuple, S3HttpClient] = {}


def sharedHttpClient(settings: S3Settings) -> S3HttpClient:
    """One HTTP executor per endpoint and timeout settings, shared by every SE object."""
    key = (settings.endpoint, settings.connectTimeout, settings.readTimeout, settings.retries, settings.verify)
    with _clientsLock:
        if key not in _clients:
            _clients[key] = S3HttpClient(
                settings.connectTimeout, settings.readTimeout, settings.retries, settings.verify
            )
        return _clients[key]


def _findText(node: ElementTree.Element, name: str) -> str:
    return node.findtext(f"{_S3_NS}{name}") or node.findtext(name) or ""


def _findAll(node: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return node.findall(f"{_S3_NS}{name}") or node.findall(name)


def _isoTime(text: str) -> datetime | None:
    """A listing's ISO 8601 time as an aware datetime (like HEAD's Last-Modified), None if absent."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _isPrepared(context: Any, s3Method: str) -> bool:
    """True when ``context`` holds a fresh URL prepared for ``s3Method``."""
    return (
        isinstance(context, tuple) and context[0] == s3Method and time.monotonic() - context[2] < PREPARED_URL_SECONDS
    )


class S3Storage(StorageBase):
    """DIRAC storage plugin for S3-compatible object stores (AWS, Ceph, MinIO, WEKA, ECS)."""

    _INPUT_PROTOCOLS = ["s3"]

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
        self.http = sharedHttpClient(self.settings)
        if self.settings.hasKeys:
            self.signer = DirectSigner(self.settings)
        else:
            self.signer = GatewaySigner(storageName, self._lfnToURL, self.settings.readTimeout)
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
        """With a gateway: the URLs of a whole bulk call in one request (and its permission checks)."""
        if operation.startswith(PRESIGN_PREFIX):
            s3Method = operation[len(PRESIGN_PREFIX) :]
        else:
            s3Method = _PREPARED_METHOD.get(operation)
        if not self.signer.batchesRequests or s3Method is None or not items:
            return super()._prepare(operation, items, **options)
        requests: dict[str, tuple[str, dict | None]] = {}
        answers: dict[str, Any] = {}
        for lfn, value in items.items():
            params = None
            if operation == "putFile":
                size = os.path.getsize(value)
                if size > self.settings.multipartThreshold:
                    answers[lfn] = None  # multipart: its URLs are asked step by step
                    continue
                digests = fileAdlerMD5(value)
                if digests is False:
                    answers[lfn] = S_ERROR(DErrno.EACCES, f"cannot read {value}")
                    continue
                params = {"Checksum": digests[0], "Size": size, "ContentMD5": digests[1]}
            requests[lfn] = (self.settings.objectKey(lfn), params)
        prepared = self.signer.authoriseMany(s3Method, requests, options.get("expiration", GATEWAY_URL_SECONDS))
        if not prepared["OK"]:
            return prepared
        preparedAt = time.monotonic()
        for lfn, result in prepared["Value"].items():
            answers[lfn] = (s3Method, result["Value"], preparedAt) if result["OK"] else result
        return S_OK(answers)

    def _failure(self, response: S3Response, lfn: str | None, action: str) -> dict:
        """S_ERROR a person can act on, for a non-2xx answer."""
        code = response.errorCode()
        where = f"{lfn} on SE {self.name}" if lfn else f"SE {self.name}"
        if code == "NoSuchBucket" or (response.status == 404 and not self._bucketExists()):
            return S_ERROR(
                DErrno.ECONF,
                f"cannot {action} {where}: bucket {self.settings.bucket} does not exist at "
                f"{self.settings.endpoint} (check the SE's Path option)",
            )
        if response.status == 404:
            return S_ERROR(DErrno.ENOENT, f"cannot {action} {where}: no such file")
        if response.status == 412:
            return S_ERROR(DErrno.EEXIST, f"cannot {action} {where}: the object exists already; not overwritten")
        if code == "BadDigest":
            return S_ERROR(
                DErrno.EBADCKS, f"cannot {action} {where}: the bytes received do not match their Content-MD5"
            )
        if response.status == 403:
            return S_ERROR(DErrno.EACCES, f"cannot {action} {where}: access denied by the S3 server ({code or 403})")
        return S_ERROR(DErrno.EIO, f"cannot {action} {where}: S3 server answered HTTP {response.status} {code}".strip())

    def _bucketExists(self) -> bool:
        """True once the bucket answered; asked again only until it has."""
        if not self._bucketSeen:
            result = self._send("list_objects", "/", {"MaxKeys": 1})
            self._bucketSeen = result["OK"] and result["Value"].status == 200
        return self._bucketSeen

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
        if size > self.settings.multipartThreshold:
            return self._putInParts(lfn, localFile, size)
        try:
            with open(localFile, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return S_ERROR(DErrno.EACCES, f"cannot read {localFile}: {exc.strerror}")
        digests = Adler32MD5()
        digests.update(data)
        checksum = digests.hexdigest()
        if isinstance(context, tuple) and context[1][1].get(CHECKSUM_HEADER) != checksum:
            return S_ERROR(DErrno.EBADCKS, f"{localFile} changed while being uploaded; nothing was written")
        params = {"Checksum": checksum, "Size": len(data), "ContentMD5": digests.md5Base64()}
        sent = self._send("put_object", lfn, params, context, body=data)
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], lfn, "upload")
        return S_OK(len(data))

    def _putInParts(self, lfn: str, localFile: str, size: int) -> dict:
        """Multipart upload; the object carries its checksum from the moment it exists.

        The checksum must be given when the upload starts, so a big file is read once
        beforehand to compute it, then again (usually from the page cache) as its parts
        are sent, each part's adler32 computed in that pass and the combination checked
        against the first before the upload is completed. Setting the checksum after
        the upload instead would need a server-side self-copy: slower (measured), not
        atomic, and refused by S3 above 5 GiB.
        """
        upfront = fileAdler(localFile)
        if upfront is False:
            return S_ERROR(DErrno.EACCES, f"cannot read {localFile}")
        self._abortEarlierUploads(lfn)
        created = self._send("create_multipart_upload", lfn, {"Checksum": upfront})
        if not created["OK"]:
            return created
        if created["Value"].status != 200:
            return self._failure(created["Value"], lfn, "start a multipart upload of")
        uploadId = _findText(ElementTree.fromstring(created["Value"].body), "UploadId")
        abort = {"UploadId": uploadId}

        def sendPart(number: int, data: bytes, md5: str) -> dict:
            params = {"UploadId": uploadId, "PartNumber": number, "Size": len(data), "ContentMD5": md5}
            sent = self._send("upload_part", lfn, params, body=data)
            if not sent["OK"]:
                return sent
            if sent["Value"].status != 200:
                return self._failure(sent["Value"], lfn, f"upload part {number} of")
            return S_OK(sent["Value"].headers.get("etag", ""))

        uploaded = uploadParts(localFile, size, self.settings.partSize, sendPart)
        if not uploaded["OK"]:
            self._send("abort_multipart_upload", lfn, abort)
            return uploaded
        parts, adler = uploaded["Value"]
        body = "<CompleteMultipartUpload>{}</CompleteMultipartUpload>".format(
            "".join(f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>" for p in parts)
        ).encode()
        if not compareAdler(upfront, intAdlerToHex(adler)):
            self._send("abort_multipart_upload", lfn, abort)
            return S_ERROR(DErrno.EBADCKS, f"{localFile} changed while being uploaded; nothing was written")
        completed = self._send("complete_multipart_upload", lfn, abort, body=body)
        if not completed["OK"] or completed["Value"].status != 200 or b"<Error>" in completed["Value"].body:
            self._send("abort_multipart_upload", lfn, abort)
            return completed if not completed["OK"] else self._failure(completed["Value"], lfn, "complete upload of")
        return S_OK(size)

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
            root = ElementTree.fromstring(response.body)
            for item in _findAll(root, "Upload"):
                uploads.append(
                    {
                        "LFN": self._keyToLFN(_findText(item, "Key")),
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

    def _getFile(self, lfn: str, localFile: str, context: Any) -> dict:
        sent = self._send("get_object", lfn, context=context, stream=True)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        if response.status != 200:
            return self._failure(response, lfn, "download")
        metadata = self._metadataFrom(response)
        size = metadata["Size"]
        if size > self.settings.multipartThreshold and response.headers.get("accept-ranges") == "bytes":
            response.abandon()
            fetched = downloadParts(
                localFile, size, self.settings.partSize, lambda o, n: self._getRange(lfn, o, n, context)
            )
            if not fetched["OK"]:
                return fetched
            actual, received = intAdlerToHex(fetched["Value"]), size
        else:
            adler = Adler32()
            try:
                with open(localFile, "wb") as handle:
                    for chunk in response.chunks():
                        adler.update(chunk)
                        handle.write(chunk)
            except OSError as exc:
                response.abandon()
                return S_ERROR(DErrno.EIO, f"cannot write {localFile}: {exc.strerror}")
            actual, received = adler.hexdigest(), adler.size
        if received != size:
            return S_ERROR(DErrno.EFILESIZE, f"download of {lfn} got {received} bytes, the object has {size}")
        if metadata["Checksum"] and not compareAdler(actual, metadata["Checksum"]):
            return S_ERROR(
                DErrno.EBADCKS,
                f"download of {lfn} is corrupt: adler32 {actual}, stored checksum {metadata['Checksum']}",
            )
        return S_OK(size)

    def _getRange(self, lfn: str, offset: int, length: int, context: Any) -> dict:
        rangeHeader = {"Range": f"bytes={offset}-{offset + length - 1}"}
        sent = self._send("get_object", lfn, None, context, rangeHeader, stream=True)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        # 206 is the standard answer; some servers (rclone) say 200 but do send just the range.
        isRange = response.headers.get("content-range", "").startswith(f"bytes {offset}-")
        if response.status not in (200, 206) or not isRange:
            if response.status in (200, 206):
                response.abandon()
            return self._failure(response, lfn, "download a part of")
        return sent

    def _removeFile(self, lfn: str, context: Any) -> dict:
        sent = self._send("delete_object", lfn, context=context)
        if not sent["OK"]:
            return sent
        if sent["Value"].status in (200, 204):
            return S_OK(True)
        failure = self._failure(sent["Value"], lfn, "remove")
        return S_OK(True) if DErrno.cmpError(failure, DErrno.ENOENT) else failure

    # ------------------------------------------------------------------ directories (prefixes)

    def _listPage(self, lfn: str, token: str, maxKeys: int) -> dict:
        sent = self._send("list_objects", lfn, {"ContinuationToken": token, "MaxKeys": maxKeys})
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], lfn, "list")
        return S_OK(ElementTree.fromstring(sent["Value"].body))

    def _keyToLFN(self, key: str) -> str:
        return "/" + key[len(self.settings.keyPrefix) :].rstrip("/")

    def _listDirectory(self, lfn: str, context: Any) -> dict:
        prefix, token = self.settings.listPrefix(lfn), ""
        files: dict[str, dict] = {}
        subDirs: list[str] = []
        for _page in range(MAX_LIST_PAGES):
            page = self._listPage(lfn, token, 1000)
            if not page["OK"]:
                return page
            root = page["Value"]
            for item in _findAll(root, "Contents"):
                key = _findText(item, "Key")
                if key == prefix:
                    continue
                files[self._keyToLFN(key)] = {
                    "Size": int(_findText(item, "Size") or 0),
                    "ModTime": _isoTime(_findText(item, "LastModified")),
                    "File": True,
                    "Directory": False,
                    "Accessible": True,
                    "Mode": 0o644,
                }
            subDirs.extend(self._keyToLFN(_findText(item, "Prefix")) for item in _findAll(root, "CommonPrefixes"))
            token = _findText(root, "NextContinuationToken")
            if _findText(root, "IsTruncated") != "true" or not token:
                return S_OK((files, subDirs))
        return S_ERROR(DErrno.EFBIG, f"listing {lfn} on SE {self.name} has more than {MAX_LIST_PAGES} pages")

    def _isDirectory(self, lfn: str, context: Any) -> dict:
        if lfn == "/":
            return S_OK(True) if self._bucketExists() else self._bucketMissing()
        page = self._listPage(lfn, "", 1)
        if not page["OK"]:
            return page
        root = page["Value"]
        return S_OK(bool(_findAll(root, "Contents") or _findAll(root, "CommonPrefixes")))

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
                url, _headers = self.signer.presign(method, key, expiration, query, headers)
                return S_OK(url)

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

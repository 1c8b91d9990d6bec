"""``S3Storage``: the ``S3`` storage plugin, one bucket per storage element.

An LFN ``/vo/user/f`` lives at ``s3://host:port/<bucket>/vo/user/f``, under the
key ``vo/user/f``. This class maps URLs to keys, builds the S3 requests and reads
the answers; who authorises a request is a separate signer (``DirectSigner``
when the configuration holds the Aws keys), and the bytes move through one
shared keep-alive HTTP executor. adler32 is computed while the bytes move,
stored as ``x-amz-meta-checksum`` on upload and verified on download.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ElementTree
import zlib
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import Adler32, compareAdler, intAdlerToHex
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.HttpClient import S3HttpClient, S3Response
from DIRAC.Resources.Storage.S3.Parts import downloadParts, uploadParts
from DIRAC.Resources.Storage.S3.Settings import MAX_PRESIGN_SECONDS, S3Settings, parseS3Settings
from DIRAC.Resources.Storage.S3.Signers import DirectSigner
from DIRAC.Resources.Storage.StorageBase import StorageBase

CHECKSUM_METADATA = "checksum"
ACCESS_URL_SECONDS = 24 * 3600
MAX_SINGLE_COPY = 5 * 1024**3  # S3 CopyObject limit
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
        self.signer = DirectSigner(self.settings) if self.settings.hasKeys else None
        self._bucketSeen = False

    @classmethod
    def checkParameters(cls, storageName: str, parameters: dict) -> dict:
        """S_OK when the protocol section is usable; S_ERROR naming the SE and the option otherwise."""
        parsed = parseS3Settings(storageName, parameters)
        if parsed["OK"] and not parsed["Value"].hasKeys:
            return S_ERROR(
                DErrno.ECONF,
                f"SE {storageName}: no Aws_access_key_id/Aws_secret_access_key in this configuration "
                "and no S3Gateway access configured",
            )
        return parsed if not parsed["OK"] else S_OK()

    @property
    def outputProtocols(self) -> list[str]:
        return ["s3", self.settings.scheme]

    # ------------------------------------------------------------------ requests

    def _send(self, method: str, lfn: str | None, query: dict | None = None, headers: dict | None = None, **kw) -> dict:
        """Sign and send one request for ``lfn`` (None: the bucket); S_OK(S3Response)."""
        key = None if lfn is None else self.settings.objectKey(lfn)
        url, signedHeaders = self.signer.sign(method, key, query, headers)
        return self.http.send(method, url, signedHeaders, **kw)

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
        if response.status == 403:
            return S_ERROR(DErrno.EACCES, f"cannot {action} {where}: access denied by the S3 server ({code or 403})")
        return S_ERROR(DErrno.EIO, f"cannot {action} {where}: S3 server answered HTTP {response.status} {code}".strip())

    def _bucketExists(self) -> bool:
        """True once the bucket answered; asked again only until it has."""
        if not self._bucketSeen:
            result = self._send("HEAD", None)
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
        sent = self._send("HEAD", lfn)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        if response.status != 200:
            if response.status == 404 and self._isDirectory(lfn, context).get("Value"):
                return S_OK({"File": False, "Directory": True, "Exists": True, "Size": 0, "Accessible": True})
            return self._failure(response, lfn, "get metadata of")
        return S_OK(self._metadataFrom(response))

    def _exists(self, lfn: str, context: Any) -> dict:
        sent = self._send("HEAD", lfn)
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
        headers = {
            f"x-amz-meta-{CHECKSUM_METADATA}": intAdlerToHex(zlib.adler32(data)),
            "Content-Length": str(len(data)),
        }
        sent = self._send("PUT", lfn, headers=headers, body=data)
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], lfn, "upload")
        return S_OK(len(data))

    def _putInParts(self, lfn: str, localFile: str, size: int) -> dict:
        """Multipart upload; the checksum, known only at the end, is set by a server-side self-copy."""
        created = self._send("POST", lfn, query={"uploads": ""})
        if not created["OK"]:
            return created
        if created["Value"].status != 200:
            return self._failure(created["Value"], lfn, "start a multipart upload of")
        uploadId = _findText(ElementTree.fromstring(created["Value"].body), "UploadId")

        def sendPart(number: int, data: bytes) -> dict:
            query = {"partNumber": str(number), "uploadId": uploadId}
            sent = self._send("PUT", lfn, query=query, headers={"Content-Length": str(len(data))}, body=data)
            if not sent["OK"]:
                return sent
            if sent["Value"].status != 200:
                return self._failure(sent["Value"], lfn, f"upload part {number} of")
            return S_OK(sent["Value"].headers.get("etag", ""))

        uploaded = uploadParts(localFile, size, self.settings.partSize, sendPart)
        if not uploaded["OK"]:
            self._send("DELETE", lfn, query={"uploadId": uploadId})
            return uploaded
        parts, adler = uploaded["Value"]
        body = "<CompleteMultipartUpload>{}</CompleteMultipartUpload>".format(
            "".join(f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>" for p in parts)
        ).encode()
        completed = self._send("POST", lfn, query={"uploadId": uploadId}, body=body)
        if not completed["OK"] or completed["Value"].status != 200 or b"<Error>" in completed["Value"].body:
            self._send("DELETE", lfn, query={"uploadId": uploadId})
            return completed if not completed["OK"] else self._failure(completed["Value"], lfn, "complete upload of")
        return self._setChecksum(lfn, intAdlerToHex(adler), size)

    def _setChecksum(self, lfn: str, checksum: str, size: int) -> dict:
        """Store ``checksum`` on an existing object by copying it onto itself with new metadata."""
        if size > MAX_SINGLE_COPY:
            return S_ERROR(DErrno.EFBIG, f"{lfn} uploaded, but S3 cannot set metadata on objects over 5 GiB")
        headers = {
            "x-amz-copy-source": f"/{self.settings.bucket}/{quote(self.settings.objectKey(lfn), safe='/~')}",
            "x-amz-metadata-directive": "REPLACE",
            f"x-amz-meta-{CHECKSUM_METADATA}": checksum,
        }
        sent = self._send("PUT", lfn, headers=headers)
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200 or b"<Error>" in sent["Value"].body:
            return self._failure(sent["Value"], lfn, "store the checksum of")
        return S_OK(size)

    def _getFile(self, lfn: str, localFile: str, context: Any) -> dict:
        sent = self._send("GET", lfn, stream=True)
        if not sent["OK"]:
            return sent
        response = sent["Value"]
        if response.status != 200:
            return self._failure(response, lfn, "download")
        metadata = self._metadataFrom(response)
        size = metadata["Size"]
        if size > self.settings.multipartThreshold and response.headers.get("accept-ranges") == "bytes":
            response.abandon()
            fetched = downloadParts(localFile, size, self.settings.partSize, lambda o, n: self._getRange(lfn, o, n))
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

    def _getRange(self, lfn: str, offset: int, length: int) -> dict:
        sent = self._send("GET", lfn, headers={"Range": f"bytes={offset}-{offset + length - 1}"}, stream=True)
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
        sent = self._send("DELETE", lfn)
        if not sent["OK"]:
            return sent
        if sent["Value"].status in (200, 204):
            return S_OK(True)
        failure = self._failure(sent["Value"], lfn, "remove")
        return S_OK(True) if DErrno.cmpError(failure, DErrno.ENOENT) else failure

    # ------------------------------------------------------------------ directories (prefixes)

    def _prefix(self, lfn: str) -> str:
        return "" if lfn == "/" else self.settings.objectKey(lfn).rstrip("/") + "/"

    def _listPage(self, prefix: str, token: str, maxKeys: int) -> dict:
        query = {"list-type": "2", "prefix": prefix, "delimiter": "/", "max-keys": str(maxKeys)}
        if token:
            query["continuation-token"] = token
        sent = self._send("GET", None, query=query)
        if not sent["OK"]:
            return sent
        if sent["Value"].status != 200:
            return self._failure(sent["Value"], prefix or "/", "list")
        return S_OK(ElementTree.fromstring(sent["Value"].body))

    def _keyToLFN(self, key: str) -> str:
        return "/" + key[len(self.settings.keyPrefix) :].rstrip("/")

    def _listDirectory(self, lfn: str, context: Any) -> dict:
        prefix, token = self._prefix(lfn), ""
        files: dict[str, dict] = {}
        subDirs: list[str] = []
        for _page in range(MAX_LIST_PAGES):
            page = self._listPage(prefix, token, 1000)
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
        page = self._listPage(self._prefix(lfn), "", 1)
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
        methods = {"get_object": "GET", "put_object": "PUT", "head_object": "HEAD", "delete_object": "DELETE"}
        if s3_method not in methods:
            return S_ERROR(DErrno.EINVAL, f"unknown S3 method {s3_method!r}; use one of {', '.join(methods)}")
        if not isinstance(expiration, int) or not 0 < expiration <= MAX_PRESIGN_SECONDS:
            return S_ERROR(DErrno.EINVAL, f"expiration must be 1..{MAX_PRESIGN_SECONDS} seconds, not {expiration!r}")

        def presign(lfn: str, _value: Any, _context: Any) -> dict:
            url, _headers = self.signer.presign(methods[s3_method], self.settings.objectKey(lfn), expiration)
            return S_OK(url)

        return self._fanOut(urls, "createPresignedUrl", presign)

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

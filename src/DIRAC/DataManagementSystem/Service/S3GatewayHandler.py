"""S3GatewayHandler: the ``DataManagement/S3Gateway`` service.

Users who hold no S3 keys ask this service for presigned URLs. At start it finds
every S3 storage element whose two Aws options this host's configuration holds
(one gateway serves them all; run as many copies as wanted). Before it signs, it
asks the file catalog, on behalf of the caller, whether the caller may do that
operation on each LFN: one bulk ``hasAccess`` per request (reads of objects first
ask ``isFile``, then ``hasAccess`` for read or, unregistered, create). Denied or malformed
URLs are ``Failed`` and nothing is signed for them. Every decision is audited.

What it signs is checked first (``S3/Methods.py``): one object per URL (never
the bucket), puts that pin size, MD5, checksum and ``If-None-Match: *``; and the
SE must allow the access (``ReadAccess`` / ``WriteAccess`` / ``RemoveAccess``).
An object whose LFN the catalog does not know is read only by who may create it.
Listings are never signed: ``getListing`` performs them and answers only what the
catalog shows the caller (``S3GatewayView``). Server-side copies between two SEs it
serves on one S3 service are signed by ``presignCopy``: only after the catalog lets
the caller read the source LFN and add a replica of it, the SEs allow Read at the
source and Write at the destination, and the gateway's own HEAD of the source gave
the ETag the caller names; the URL pins that bucket, key and ETag. URL lifetimes: whole
seconds, at most ``MaxExpiration`` for ``get_object`` (the URLs handed to
external applications), at most one hour for the others, and URLs that write
or remove are cut to ``WRITE_URL_SECONDS`` whatever was asked.

Configuration (``/Systems/DataManagement/Services/S3Gateway``): ``MaxExpiration``
(seconds, default 86400), ``AuditFile`` (JSON lines), ``AuditWebhook`` (URL).
"""

from __future__ import annotations

from typing import Any

from DIRAC.ConfigurationSystem.Client.Helpers.Resources import getStorageElements
from DIRAC.Core.DISET.RequestHandler import RequestHandler, getServiceOption
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.Service.S3GatewayView import (
    CallerCatalog,
    listMultipartUploads,
    listObjects,
    objectReads,
)
from DIRAC.DataManagementSystem.Utilities.AuditLog import AuditLog
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Storage.S3.Credentials import signingCredentials
from DIRAC.Resources.Storage.S3.Methods import (
    CHECKSUM_HEADER,
    COPY_PARTS_PER_CALL,
    COPY_SOURCE_ACCESS,
    GATEWAY_ANSWERS,
    GATEWAY_SOURCE_PARAMS,
    MAX_DELETE_KEYS,
    OBJECT_READS,
    OPERATIONS,
    WRITE_URL_SECONDS,
    buildRequest,
    canDeleteInBulk,
    checkChecksum,
    checkObjectKey,
)
from DIRAC.Resources.Storage.S3.PresignedPost import presignPost
from DIRAC.Resources.Storage.S3.ServerSideCopy import StoredObject, canCopy, headObject, sourceParams
from DIRAC.Resources.Storage.S3.Settings import MAX_PRESIGN_SECONDS
from DIRAC.Resources.Storage.S3Storage import S3Storage
from DIRAC.Resources.Storage.StorageElement import StorageElement
from DIRAC.Resources.Storage.StorageFactory import StorageFactory
from DIRAC.Resources.Storage.Utilities import runBulk

#: the longest lifetime of the URLs handed to external applications (``dirac-dms-lfn-accessURL``)
DEFAULT_MAX_EXPIRATION = 86400
#: the only method whose URLs may live that long: a read handed to another program
ACCESS_URL_METHOD = "get_object"
#: the longest lifetime of every other URL: the client uses it at once
MAX_URL_SECONDS = 3600
MAX_URLS_PER_CALL = 10000
#: the answer's key holding the clean-up URLs of each granted upload (``cleanUpUrls``)
CLEANUP_KEY = "CleanUp"
#: marks DIRAC 9's put request, answered with a presigned POST form
POST_FORM = "POST-FORM"
log = gLogger.getSubLogger("S3Gateway")


def findServedStorages() -> dict[str, S3Storage]:
    """{SE name: S3 plugin} for every S3 SE whose keys this host's configuration holds."""
    served: dict[str, S3Storage] = {}
    for seName in getStorageElements().get("Value", []):
        result = StorageFactory().getStorages(seName, ["S3"])
        if not result["OK"]:
            continue
        for storage in result["Value"]["StorageObjects"]:
            if isinstance(storage, S3Storage) and storage.isok and storage.settings.hasKeys:
                served[seName] = storage
                break
    return served


class S3GatewayHandler(RequestHandler):
    """Signs S3 URLs for callers the file catalog allows."""

    storages: dict[str, S3Storage] = {}
    audit: AuditLog = AuditLog()
    maxExpiration = DEFAULT_MAX_EXPIRATION

    @classmethod
    def initializeHandler(cls, serviceInfo: dict) -> dict:
        """Find the S3 SEs this gateway can sign for; set up the audit trail."""
        cls.storages = findServedStorages()
        cls.maxExpiration = min(
            int(getServiceOption(serviceInfo, "MaxExpiration", DEFAULT_MAX_EXPIRATION)), MAX_PRESIGN_SECONDS
        )
        cls.audit = AuditLog(
            getServiceOption(serviceInfo, "AuditFile", ""), getServiceOption(serviceInfo, "AuditWebhook", "")
        )
        checked = cls.audit.check()
        if not checked["OK"]:
            return checked
        if cls.storages:
            log.always("Serving S3 storage elements:", ", ".join(sorted(cls.storages)))
        else:
            log.error("No S3 storage element with Aws keys in this host's configuration: every request will fail")
        return S_OK()

    types_createPresignedUrl = [str, str, (list, dict), int]

    def export_createPresignedUrl(self, storageName: str, s3_method: str, urls: Any, expiration: int) -> dict:
        """Bulk: a presigned URL for each URL of ``storageName`` the caller may ``s3_method``.

        ``urls`` is a list of SE URLs, or ``{url: params}`` with the operation's
        parameters (``Checksum``, ``Size``, ``ContentMD5``, ``UploadId``,
        ``PartNumber``, ``ContinuationToken``, ``MaxKeys``). DIRAC 9's form,
        ``put_object`` with ``{url: {"x-amz-meta-checksum": adler32}}``, is answered
        with a presigned POST ``{"url", "fields"}``. URLs that write or remove
        live ``WRITE_URL_SECONDS`` at most, whatever was asked. An answer granting
        uploads also holds, under ``CleanUp``, a HEAD and a DELETE URL of each
        (``cleanUpUrls``).
        """
        served = self._served(storageName, s3_method)
        if not served["OK"]:
            return served
        storage, operation = served["Value"]
        if s3_method in GATEWAY_ANSWERS:
            return S_ERROR(
                DErrno.EINVAL,
                f"{s3_method} is answered by the gateway (getListing), not signed: "
                "S3's own answer shows sizes, ETags and names the catalog hides",
            )
        if operation.bindsBody:
            return S_ERROR(
                DErrno.EINVAL, f"{s3_method} binds its body: presignDeleteObjects signs it, createPresignedUrl does not"
            )
        if operation.copiesSource:
            return S_ERROR(
                DErrno.EINVAL,
                f"{s3_method} reads a source the gateway pins: presignCopy signs it, not createPresignedUrl",
            )
        lifetime = self._lifetime(s3_method, expiration)
        if not lifetime["OK"]:
            return lifetime
        expiration = lifetime["Value"]
        allowedHere = StorageElement(storageName).isValid(operation.access)
        if not allowedHere["OK"]:
            return allowedHere
        if isinstance(urls, list) and not all(isinstance(url, str) for url in urls):
            return S_ERROR(DErrno.ETYPE, "urls must be a list of URL strings or a dict {url: parameters}")
        items = {url: {} for url in urls} if isinstance(urls, list) else dict(urls)
        if len(items) > MAX_URLS_PER_CALL:
            return S_ERROR(DErrno.EINVAL, f"at most {MAX_URLS_PER_CALL} URLs per call, got {len(items)}")
        credentials = self.getRemoteCredentials()
        failed: dict[str, str] = {}
        requests: dict[str, tuple[str, dict]] = {}
        for url, params in items.items():
            prepared = self._request(storage, s3_method, url, params)
            if prepared["OK"]:
                requests[url] = prepared["Value"]
            else:
                failed[url] = prepared["Message"]
        lfns = {url: lfn for url, (lfn, _request) in requests.items()}
        catalog = CallerCatalog(credentials)
        if s3_method in OBJECT_READS:
            allowed = objectReads(catalog, sorted(set(lfns.values())))
        else:
            allowed = catalog.allowed(sorted(set(lfns.values())), operation.permission)
        forms = [
            url for url, (lfn, request) in requests.items() if request[0] == POST_FORM and allowed.get(lfn) is True
        ]
        free = self._stillFree(storage, forms)
        successful: dict[str, Any] = {}
        decisions = []
        for url, (lfn, request) in requests.items():
            reason = allowed.get(lfn, "permission denied")
            if reason is True and url in free:
                reason = free[url]
            if reason is True:
                signed = self._sign(storage, request, expiration)
                reason = True if signed["OK"] else signed["Message"]
                if signed["OK"]:
                    successful[url] = signed["Value"]
            if reason is not True:
                failed[url] = reason
            decisions.append({"lfn": lfn, "granted": reason is True, "reason": "" if reason is True else reason})
        decisions += [
            {"url": url, "granted": False, "reason": reason} for url, reason in failed.items() if url not in lfns
        ]
        common = _auditCaller(credentials, storageName)
        self.audit.record([{**common, "method": s3_method, "expiration": expiration, **d} for d in decisions])
        answer: dict[str, Any] = {"Successful": successful, "Failed": failed}
        if operation.createsObject and successful:
            answer[CLEANUP_KEY] = cleanUpUrls(storage, {url: lfns[url] for url in successful})
        return S_OK(answer)

    types_getListing = [str, str, str, dict]

    def export_getListing(self, storageName: str, s3_method: str, url: str, params: dict) -> dict:
        """S_OK(S3 listing document) of the directory ``url``: only what the catalog shows the caller.

        ``s3_method``: ``list_objects`` (``params``: ``ContinuationToken``, ``MaxKeys``; the
        gateway reads S3 pages of 1,000 keys whatever ``MaxKeys`` says) or
        ``list_multipart_uploads`` (one answer, never truncated). The caller needs ``r`` on the
        directory; what the answer holds is described in ``S3GatewayView``.
        """
        served = self._served(storageName, s3_method)
        if not served["OK"]:
            return served
        storage, operation = served["Value"]
        if s3_method not in GATEWAY_ANSWERS:
            return S_ERROR(DErrno.EINVAL, f"getListing answers {', '.join(sorted(GATEWAY_ANSWERS))}, not {s3_method}")
        allowedHere = StorageElement(storageName).isValid(operation.access)
        if not allowedHere["OK"]:
            return allowedHere
        prepared = self._request(storage, s3_method, url, params)
        if not prepared["OK"]:
            return prepared
        lfn = prepared["Value"][0]
        credentials = self.getRemoteCredentials()
        catalog = CallerCatalog(credentials)
        reason = catalog.allowed([lfn], operation.permission)[lfn]
        record = {**_auditCaller(credentials, storageName), "method": s3_method, "lfn": lfn, "granted": reason is True}
        self.audit.record([{**record, "reason": "" if reason is True else reason}])
        if reason is not True:
            return S_ERROR(DErrno.EACCES, f"cannot list {lfn}: {reason}")
        if s3_method == "list_multipart_uploads":
            return listMultipartUploads(storage, catalog, lfn)
        return listObjects(storage, catalog, lfn, params.get("ContinuationToken") or "")

    types_presignCopy = [str, str, str, dict, int]

    def export_presignCopy(
        self, storageName: str, sourceStorageName: str, s3_method: str, urls: dict, expiration: int
    ) -> dict:
        """Bulk: a presigned server-side copy into ``storageName`` of each URL's LFN on ``sourceStorageName``.

        ``s3_method`` is ``copy_object`` or ``upload_part_copy``; ``urls`` is
        ``{destination URL: params}`` with ``SourceETag`` (the ETag the caller's HEAD of the
        source gave) and, for a part, ``UploadId``, ``PartNumber`` and ``SourceRange``, or
        ``UploadId`` and ``Parts`` (``{"<number>": "bytes=a-b"}``: the answer is then
        ``{"<number>": URL}`` for that destination URL, all parts or none). The
        source bucket and key are the gateway's: the same LFN on the source SE. Signed only
        when both SEs are served here on one S3 service (else ``EWRONGSE`` for the whole
        call: the caller streams instead), the SEs allow Read at the source and Write at
        the destination, the catalog lets the caller read the LFN and add a replica of it,
        and the gateway's own HEAD of the source answers that ETag. The URL pins bucket,
        key and ETag and lives ``WRITE_URL_SECONDS`` at most. The answer has the shape of
        ``createPresignedUrl``'s.
        """
        served = self._served(storageName, s3_method)
        if not served["OK"]:
            return served
        storage, operation = served["Value"]
        if not operation.copiesSource:
            return S_ERROR(DErrno.EINVAL, f"presignCopy signs copy_object and upload_part_copy, not {s3_method}")
        source = self.storages.get(sourceStorageName)
        if source is None:
            return S_ERROR(
                DErrno.EWRONGSE,
                f"this S3Gateway does not serve SE {sourceStorageName} (unknown, not S3, or no keys on this host)",
            )
        if not canCopy(storage, source):
            return S_ERROR(
                DErrno.EWRONGSE,
                f"SEs {sourceStorageName} and {storageName} are not on one S3 service with the same keys: "
                "no server-side copy between them",
            )
        lifetime = self._lifetime(s3_method, expiration)
        if not lifetime["OK"]:
            return lifetime
        for seName, access in ((sourceStorageName, COPY_SOURCE_ACCESS), (storageName, operation.access)):
            allowedHere = StorageElement(seName).isValid(access)
            if not allowedHere["OK"]:
                return allowedHere
        if len(urls) > MAX_URLS_PER_CALL:
            return S_ERROR(DErrno.EINVAL, f"at most {MAX_URLS_PER_CALL} URLs per call, got {len(urls)}")
        credentials = self.getRemoteCredentials()
        failed: dict[str, str] = {}
        asked: dict[str, tuple[str, dict]] = {}
        for url, params in urls.items():
            mapped = storage._urlToLFN(url)
            if not mapped["OK"]:
                failed[url] = mapped["Message"]
            elif not isinstance(params, dict):
                failed[url] = f"{s3_method}: parameters must be a dict, not {type(params).__name__}"
            elif GATEWAY_SOURCE_PARAMS & set(params):
                named = ", ".join(sorted(GATEWAY_SOURCE_PARAMS & set(params)))
                failed[url] = f"{s3_method}: the gateway names the copy's source itself; not {named}"
            else:
                asked[url] = (mapped["Value"], params)
        lfns = sorted({lfn for lfn, _params in asked.values()})
        allowed = copiesAllowed(CallerCatalog(credentials), lfns, operation.permission)
        seen = sourcesSeen(source, [lfn for lfn in lfns if allowed[lfn] is True])
        successful: dict[str, Any] = {}
        decisions = []
        for url, (lfn, params) in asked.items():
            reason = allowed[lfn] if allowed[lfn] is not True else _sameSource(seen[lfn], params.get("SourceETag"))
            if reason is True:
                pinned = {**params, **sourceParams(source, lfn), "SourceETag": seen[lfn].etag}
                if s3_method == "upload_part_copy" and "Parts" in params:
                    signed = _signCopyParts(storage, lfn, pinned, lifetime["Value"])
                else:
                    signed = _signCopy(storage, s3_method, lfn, pinned, lifetime["Value"])
                reason = True if signed["OK"] else signed["Message"]
                if signed["OK"]:
                    successful[url] = signed["Value"]
            if reason is not True:
                failed[url] = reason
            decisions.append({"lfn": lfn, "granted": reason is True, "reason": "" if reason is True else reason})
        decisions += [{"url": url, "granted": False, "reason": failed[url]} for url in urls if url not in asked]
        common = {**_auditCaller(credentials, storageName), "source": sourceStorageName, "method": s3_method}
        self.audit.record([{**common, "expiration": lifetime["Value"], **d} for d in decisions])
        answer: dict[str, Any] = {"Successful": successful, "Failed": failed}
        if operation.createsObject and successful:
            answer[CLEANUP_KEY] = cleanUpUrls(storage, {url: asked[url][0] for url in successful})
        return S_OK(answer)

    def _served(self, storageName: str, s3Method: str) -> dict:
        """S_OK((S3 plugin, operation)) when this gateway serves ``storageName`` and knows ``s3Method``."""
        storage = self.storages.get(storageName)
        if storage is None:
            return S_ERROR(
                DErrno.EWRONGSE,
                f"this S3Gateway does not serve SE {storageName} (unknown, not S3, or no keys on this host)",
            )
        operation = OPERATIONS.get(s3Method)
        if operation is None:
            return S_ERROR(DErrno.EINVAL, f"unknown S3 method {s3Method!r}; known: {', '.join(OPERATIONS)}")
        return S_OK((storage, operation))

    def _lifetime(self, s3Method: str, expiration: Any) -> dict:
        """S_OK(seconds the URL lives) or S_ERROR: whole seconds, capped; writes are shortened."""
        if not isinstance(expiration, int) or isinstance(expiration, bool):
            return S_ERROR(DErrno.EINVAL, f"expiration must be a whole number of seconds, not {expiration!r}")
        cap = self.maxExpiration if s3Method == ACCESS_URL_METHOD else min(MAX_URL_SECONDS, self.maxExpiration)
        if not 0 < expiration <= cap:
            return S_ERROR(DErrno.EINVAL, f"expiration must be 1..{cap} seconds for {s3Method}, not {expiration}")
        return S_OK(min(expiration, WRITE_URL_SECONDS) if OPERATIONS[s3Method].changesStorage else expiration)

    @staticmethod
    def _request(storage: S3Storage, s3Method: str, url: Any, params: Any) -> dict:
        """S_OK((lfn, request)) for one URL: mapped, checked and built, not yet allowed nor signed."""
        mapped = storage._urlToLFN(url)
        if not mapped["OK"]:
            return mapped
        lfn = mapped["Value"]
        settings = storage.settings
        if OPERATIONS[s3Method].onBucket:
            return _withLFN(lfn, buildRequest(s3Method, settings.listPrefix(lfn), params, viaGateway=True))
        key = settings.objectKey(lfn)
        if s3Method == "put_object" and isinstance(params, dict) and CHECKSUM_HEADER in params:
            return _withLFN(lfn, _postRequest(key, params))
        return _withLFN(lfn, buildRequest(s3Method, key, params, viaGateway=True))

    @staticmethod
    def _stillFree(storage: S3Storage, urls: list[str]) -> dict[str, Any]:
        """{url: True, or why no form is signed}: a form upload cannot carry ``If-None-Match``,
        so its name must be free when it is signed (the store does not check it later)."""
        if not urls:
            return {}
        found = storage.exists(urls)
        if not found["OK"]:
            return dict.fromkeys(urls, f"cannot check that the name is free, nothing signed: {found['Message']}")
        answers: dict[str, Any] = {}
        for url in urls:
            exists = found["Value"]["Successful"].get(url)
            if exists is False:
                answers[url] = True
            elif exists is True:
                answers[url] = "the object exists already; a form upload would replace it, nothing signed"
            else:
                reason = found["Value"]["Failed"].get(url, "no answer")
                answers[url] = f"cannot check that the name is free, nothing signed: {reason}"
        return answers

    @staticmethod
    def _sign(storage: S3Storage, request: tuple, expiration: int) -> dict:
        """S_OK(the presigned URL of a built request, or the presigned POST form of DIRAC 9's put)."""
        if request[0] == POST_FORM:
            _form, key, checksum = request
            credentials = signingCredentials(storage.settings).frozen()
            if not credentials["OK"]:
                return credentials
            return S_OK(presignPost(storage.settings, credentials["Value"], key, checksum, expiration))
        method, objectKey, query, headers = request
        signed = storage.signer.presign(method, objectKey, expiration, query, headers)
        return S_OK(signed["Value"][0]) if signed["OK"] else signed

    types_presignDeleteObjects = [str, list, int]

    def export_presignDeleteObjects(self, storageName: str, urls: list, expiration: int) -> dict:
        """One presigned DeleteObjects request for the URLs of ``storageName`` the caller may remove.

        The catalog is asked about every LFN first; refused ones go to ``Failed``
        with the reason. The URL's signed Content-MD5 binds the XML body this
        gateway builds from the allowed keys (``deleteObjectsBody``, which the
        client rebuilds the same), so it removes exactly those keys and nothing else.
        Answers ``{'Successful': {url: True}, 'Failed': {url: reason}, 'URL': str, 'Headers': dict}``.
        """
        served = self._served(storageName, "delete_objects")
        if not served["OK"]:
            return served
        storage, operation = served["Value"]
        lifetime = self._lifetime("delete_objects", expiration)
        if not lifetime["OK"]:
            return lifetime
        if not urls or len(urls) > MAX_DELETE_KEYS or not all(isinstance(url, str) for url in urls):
            return S_ERROR(DErrno.EINVAL, f"give 1..{MAX_DELETE_KEYS} URLs (strings), got {len(urls)} items")
        allowedHere = StorageElement(storageName).isValid(operation.access)
        if not allowedHere["OK"]:
            return allowedHere
        credentials = self.getRemoteCredentials()
        failed: dict[str, str] = {}
        lfns: dict[str, str] = {}
        for url in urls:
            mapped = storage._urlToLFN(url)
            if not mapped["OK"]:
                failed[url] = mapped["Message"]
            elif not canDeleteInBulk(storage.settings.objectKey(mapped["Value"])):
                failed[url] = "its key cannot be named in a multi-object delete: remove it alone"
            else:
                lfns[url] = mapped["Value"]
        allowed = CallerCatalog(credentials).allowed(sorted(set(lfns.values())), operation.permission)
        granted = {url: lfn for url, lfn in lfns.items() if allowed.get(lfn) is True}
        failed.update({url: allowed.get(lfn, "permission denied") for url, lfn in lfns.items() if url not in granted})
        answer = {"Successful": dict.fromkeys(granted, True), "Failed": failed, "URL": "", "Headers": {}}
        if granted:
            keys = [storage.settings.objectKey(lfn) for lfn in granted.values()]
            built = buildRequest("delete_objects", None, {"Keys": keys})
            if not built["OK"]:
                return built
            method, _bucket, query, headers = built["Value"]
            signed = storage.signer.presign(method, None, lifetime["Value"], query, headers)
            if not signed["OK"]:
                return signed
            answer["URL"], answer["Headers"] = signed["Value"]
        record = {**_auditCaller(credentials, storageName), "method": "delete_objects", "expiration": lifetime["Value"]}
        self.audit.record(
            [{**record, "lfn": lfn, "granted": True, "reason": ""} for lfn in granted.values()]
            + [{**record, "url": url, "granted": False, "reason": reason} for url, reason in failed.items()]
        )
        return S_OK(answer)


def cleanUpUrls(storage: S3Storage, lfns: dict[str, str]) -> dict[str, dict]:
    """``{url: {'head_object': URL, 'delete_object': URL, 'Expiration': seconds}}`` for uploads just granted.

    Handed out with each put (and multipart completion) URL, so that a client whose
    registration fails can check and remove what it wrote even when the catalog
    (which every other URL needs) is down. They give no new power: creating or
    removing an entry both need write on the directory. They live as long as a
    write URL.
    """
    urls = {}
    for url, lfn in lfns.items():
        key = storage.settings.objectKey(lfn)
        urls[url] = {"Expiration": WRITE_URL_SECONDS}
        for s3Method in ("head_object", "delete_object"):
            method = OPERATIONS[s3Method].httpMethod
            signed = storage.signer.presign(method, key, WRITE_URL_SECONDS)
            if signed["OK"]:
                urls[url][s3Method] = signed["Value"][0]
    return urls


def copiesAllowed(catalog: CallerCatalog, lfns: list[str], permission: str) -> dict[str, Any]:
    """{lfn: True or why not}: may the caller read ``lfn`` (as a GET, ``objectReads``) and ``permission``
    (add a replica of) it? Asked of the catalog alone: the answer is the same whether or not objects exist."""
    reads = objectReads(catalog, lfns)
    writes = catalog.allowed([lfn for lfn in lfns if reads.get(lfn) is True], permission)
    answers: dict[str, Any] = {}
    for lfn in lfns:
        if reads.get(lfn) is not True:
            answers[lfn] = f"cannot read the source: {reads.get(lfn, 'permission denied')}"
        elif writes.get(lfn) is not True:
            answers[lfn] = f"cannot write the destination: {writes.get(lfn, 'permission denied')}"
        else:
            answers[lfn] = True
    return answers


def sourcesSeen(source: S3Storage, lfns: list[str]) -> dict[str, Any]:
    """{lfn: StoredObject, or why the source cannot be copied}: the gateway's own HEAD of each source."""
    seen, failed = runBulk(((lfn, None) for lfn in lfns), lambda lfn, _v: headObject(source, lfn), source.maxWorkers)
    return {**{lfn: f"the source cannot be copied: {reason}" for lfn, reason in failed.items()}, **seen}


def _sameSource(seen: Any, etag: Any) -> Any:
    """True when the source the gateway saw has the ETag the caller asked for; else why not."""
    if not isinstance(seen, StoredObject):
        return seen
    if seen.etag != etag:
        return f"the source's ETag is {seen.etag}, not {etag!r}: it changed since the caller looked; nothing signed"
    return True


def _signCopy(storage: S3Storage, s3Method: str, lfn: str, params: dict, expiration: int) -> dict:
    """S_OK(presigned copy URL of ``lfn`` into ``storage``), its source pinned by ``params``."""
    built = buildRequest(s3Method, storage.settings.objectKey(lfn), params, viaGateway=True)
    return S3GatewayHandler._sign(storage, built["Value"], expiration) if built["OK"] else built


def _signCopyParts(storage: S3Storage, lfn: str, params: dict, expiration: int) -> dict:
    """S_OK({"<number>": presigned part copy URL}) for ``params["Parts"]`` (``{"<number>": "bytes=a-b"}``,
    at most ``COPY_PARTS_PER_CALL``), each pinned like a single part copy; S_ERROR naming a bad part."""
    parts = params["Parts"]
    if not isinstance(parts, dict) or not 0 < len(parts) <= COPY_PARTS_PER_CALL:
        return S_ERROR(
            DErrno.EINVAL, f"upload_part_copy: Parts must map 1..{COPY_PARTS_PER_CALL} part numbers to ranges"
        )
    single = {name: value for name, value in params.items() if name != "Parts"}
    signed: dict[str, str] = {}
    for number, byteRange in parts.items():
        if not isinstance(number, str) or not number.isdigit():
            return S_ERROR(DErrno.EINVAL, f"upload_part_copy: Parts names part numbers, not {number!r}")
        part = _signCopy(
            storage,
            "upload_part_copy",
            lfn,
            {**single, "PartNumber": int(number), "SourceRange": byteRange},
            expiration,
        )
        if not part["OK"]:
            return S_ERROR(part["Errno"], f"part {number}: {part['Message']}")
        signed[number] = part["Value"]
    return S_OK(signed)


def _auditCaller(credentials: dict, storageName: str) -> dict[str, str]:
    """The fields every audit record of one call holds: who asked (DN, group) and which SE."""
    return {"dn": credentials.get("DN", ""), "group": credentials.get("group", ""), "se": storageName}


def _withLFN(lfn: str, built: dict) -> dict:
    return S_OK((lfn, built["Value"])) if built["OK"] else built


def _postRequest(key: str, params: dict) -> dict:
    """S_OK((POST_FORM, key, checksum)) for DIRAC 9's ``{"x-amz-meta-checksum": adler32}``; nothing else taken."""
    others = sorted(str(name) for name in params if name != CHECKSUM_HEADER)
    if others:
        return S_ERROR(DErrno.EINVAL, f"put_object as a form takes only {CHECKSUM_HEADER}; not {', '.join(others)}")
    checked = checkObjectKey("put_object", key)
    if not checked["OK"]:
        return checked
    checksum = checkChecksum("put_object", params[CHECKSUM_HEADER], CHECKSUM_HEADER)
    return S_OK((POST_FORM, key, checksum["Value"])) if checksum["OK"] else checksum

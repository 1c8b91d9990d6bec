"""S3GatewayHandler: the ``DataManagement/S3Gateway`` service.

Users who hold no S3 keys ask this service for presigned URLs. At start it finds
every S3 storage element whose two Aws options this host's configuration holds
(one gateway serves them all; run as many copies as wanted). Before it signs, it
asks the file catalog, on behalf of the caller, whether the caller may do that
operation on each LFN: one bulk ``hasAccess`` per request. Denied or malformed
URLs are ``Failed`` and nothing is signed for them. Every decision is audited.

What it signs is checked first (``S3/Methods.py``): one object per URL (never
the bucket), listings of a directory with the fixed delimiter, puts that pin
size, MD5, checksum and ``If-None-Match: *``; and the SE must allow the access
(``ReadAccess`` / ``WriteAccess`` / ``RemoveAccess``). URL lifetimes: whole
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
from DIRAC.DataManagementSystem.Utilities.AuditLog import AuditLog
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog
from DIRAC.Resources.Storage.S3.Methods import (
    CHECKSUM_HEADER,
    OPERATIONS,
    WRITE_URL_SECONDS,
    buildRequest,
    checkChecksum,
    checkObjectKey,
)
from DIRAC.Resources.Storage.S3.PresignedPost import presignPost
from DIRAC.Resources.Storage.S3.Settings import MAX_PRESIGN_SECONDS
from DIRAC.Resources.Storage.S3Storage import S3Storage
from DIRAC.Resources.Storage.StorageElement import StorageElement
from DIRAC.Resources.Storage.StorageFactory import StorageFactory

#: the longest lifetime of the URLs handed to external applications (``dirac-dms-lfn-accessURL``)
DEFAULT_MAX_EXPIRATION = 86400
#: the only method whose URLs may live that long: a read handed to another program
ACCESS_URL_METHOD = "get_object"
#: the longest lifetime of every other URL: the client uses it at once
MAX_URL_SECONDS = 3600
MAX_URLS_PER_CALL = 10000
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
        live ``WRITE_URL_SECONDS`` at most, whatever was asked.
        """
        storage = self.storages.get(storageName)
        if storage is None:
            return S_ERROR(
                DErrno.EWRONGSE,
                f"this S3Gateway does not serve SE {storageName} (unknown, not S3, or no keys on this host)",
            )
        operation = OPERATIONS.get(s3_method)
        if operation is None:
            return S_ERROR(DErrno.EINVAL, f"unknown S3 method {s3_method!r}; known: {', '.join(OPERATIONS)}")
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
        allowed = self._allowed(credentials, sorted(set(lfns.values())), operation.permission)
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
                successful[url] = self._sign(storage, request, expiration)
            else:
                failed[url] = reason
            decisions.append({"lfn": lfn, "granted": reason is True, "reason": "" if reason is True else reason})
        decisions += [
            {"url": url, "granted": False, "reason": reason} for url, reason in failed.items() if url not in lfns
        ]
        common = {"dn": credentials.get("DN", ""), "group": credentials.get("group", ""), "se": storageName}
        self.audit.record([{**common, "method": s3_method, "expiration": expiration, **d} for d in decisions])
        return S_OK({"Successful": successful, "Failed": failed})

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
    def _allowed(credentials: dict, lfns: list[str], permission: str) -> dict[str, Any]:
        """{lfn: True or the reason it is refused}, from one catalog call on the caller's behalf."""
        if not lfns:
            return {}
        if not credentials.get("DN") or not credentials.get("group"):
            return dict.fromkeys(lfns, "permission denied: the caller has no identity and group")
        catalog = FileCatalog(delegatedDN=credentials["DN"], delegatedGroup=credentials["group"], useCertificates=True)
        result = catalog.hasAccess(lfns, permission)
        if not result["OK"]:
            log.error("File catalog permission check failed:", result["Message"])
            return dict.fromkeys(lfns, f"permission check failed, nothing signed: {result['Message']}")
        answers: dict[str, Any] = {}
        for lfn in lfns:
            if result["Value"]["Successful"].get(lfn) is True:
                answers[lfn] = True
            elif lfn in result["Value"]["Failed"]:
                answers[lfn] = f"permission check failed: {result['Value']['Failed'][lfn]}"
            else:
                answers[lfn] = "permission denied"
        return answers

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
    def _sign(storage: S3Storage, request: tuple, expiration: int) -> Any:
        """The presigned URL of a built request, or the presigned POST form of DIRAC 9's put."""
        if request[0] == POST_FORM:
            _form, key, checksum = request
            return presignPost(storage.settings, key, checksum, expiration)
        method, objectKey, query, headers = request
        url, _signedHeaders = storage.signer.presign(method, objectKey, expiration, query, headers)
        return url


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

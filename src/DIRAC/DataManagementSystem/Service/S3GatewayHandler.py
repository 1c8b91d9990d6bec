"""S3GatewayHandler: the ``DataManagement/S3Gateway`` service.

Users who hold no S3 keys ask this service for presigned URLs. At start it finds
every S3 storage element whose two Aws options this host's configuration holds
(one gateway serves them all; run as many copies as wanted). Before it signs, it
asks the file catalog, on behalf of the caller, whether the caller may do that
operation on each LFN: one bulk ``hasAccess`` per request. Denied or malformed
URLs are ``Failed`` and nothing is signed for them. Every decision is audited.

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
from DIRAC.Resources.Storage.S3.Methods import OPERATIONS, buildRequest
from DIRAC.Resources.Storage.S3.Settings import MAX_PRESIGN_SECONDS
from DIRAC.Resources.Storage.S3Storage import S3Storage
from DIRAC.Resources.Storage.StorageFactory import StorageFactory

DEFAULT_MAX_EXPIRATION = 86400
MAX_URLS_PER_CALL = 10000
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
        if cls.storages:
            log.always("Serving S3 storage elements:", ", ".join(sorted(cls.storages)))
        else:
            log.error("No S3 storage element with Aws keys in this host's configuration: every request will fail")
        return S_OK()

    types_createPresignedUrl = [str, str, (list, dict), int]

    def export_createPresignedUrl(self, storageName: str, s3_method: str, urls: Any, expiration: int) -> dict:
        """Bulk: a presigned URL for each URL of ``storageName`` the caller may ``s3_method``.

        ``urls`` is a list of SE URLs, or ``{url: params}`` with the operation's
        parameters (``Checksum``, ``Size``, ``UploadId``, ``PartNumber``, ``ContinuationToken``).
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
        if not 0 < expiration <= self.maxExpiration:
            return S_ERROR(DErrno.EINVAL, f"expiration must be 1..{self.maxExpiration} seconds, not {expiration}")
        if isinstance(urls, list) and not all(isinstance(url, str) for url in urls):
            return S_ERROR(DErrno.ETYPE, "urls must be a list of URL strings or a dict {url: parameters}")
        items = {url: {} for url in urls} if isinstance(urls, list) else dict(urls)
        if len(items) > MAX_URLS_PER_CALL:
            return S_ERROR(DErrno.EINVAL, f"at most {MAX_URLS_PER_CALL} URLs per call, got {len(items)}")
        credentials = self.getRemoteCredentials()
        failed: dict[str, str] = {}
        lfns: dict[str, str] = {}
        for url in items:
            mapped = storage._urlToLFN(url)
            if mapped["OK"]:
                lfns[url] = mapped["Value"]
            else:
                failed[url] = mapped["Message"]
        allowed = self._allowed(credentials, sorted(set(lfns.values())), operation.permission)
        successful: dict[str, str] = {}
        decisions = []
        for url, lfn in lfns.items():
            reason = allowed.get(lfn, "permission denied")
            if reason is True:
                signed = self._sign(storage, s3_method, lfn, items[url], expiration)
                reason = True if signed["OK"] else signed["Message"]
                if signed["OK"]:
                    successful[url] = signed["Value"]
            if reason is not True:
                failed[url] = reason
            decisions.append({"lfn": lfn, "granted": reason is True, "reason": "" if reason is True else reason})
        decisions += [
            {"url": url, "granted": False, "reason": reason} for url, reason in failed.items() if url not in lfns
        ]
        common = {"dn": credentials.get("DN", ""), "group": credentials.get("group", ""), "se": storageName}
        self.audit.record([{**common, "method": s3_method, "expiration": expiration, **d} for d in decisions])
        return S_OK({"Successful": successful, "Failed": failed})

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
    def _sign(storage: S3Storage, s3Method: str, lfn: str, params: Any, expiration: int) -> dict:
        """S_OK(presigned URL) for one operation; puts must pin the checksum."""
        settings = storage.settings
        key = settings.listPrefix(lfn) if OPERATIONS[s3Method].onBucket else settings.objectKey(lfn)
        built = buildRequest(s3Method, key, params if isinstance(params, dict) else {}, requireChecksum=True)
        if not built["OK"]:
            return built
        method, objectKey, query, headers = built["Value"]
        url, _signedHeaders = storage.signer.presign(method, objectKey, expiration, query, headers)
        return S_OK(url)

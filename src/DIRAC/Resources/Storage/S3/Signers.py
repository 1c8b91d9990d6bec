"""Who authorises an S3 request: the SE's own keys, or the S3Gateway service.

Both signers answer ``authorise(s3Method, lfn, key, params)`` with the URL to
call and the headers to send, so ``S3Storage`` builds every request the same
way whichever holds the keys. ``DirectSigner`` signs locally (SigV4);
``GatewaySigner`` asks the gateway, which checks the caller's catalog
permission first, and can do that for a whole bulk call in one round trip.
"""

from __future__ import annotations

from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Methods import buildRequest
from DIRAC.Resources.Storage.S3.Settings import S3Settings
from DIRAC.Resources.Storage.S3.SigV4 import SigV4Signer, canonicalQuery

GATEWAY_SERVICE = "DataManagement/S3Gateway"
GATEWAY_URL_SECONDS = 3600
GATEWAY_BATCH = 1000


class DirectSigner:
    """Signs requests with the access key pair from the SE configuration."""

    batchesRequests = False

    def __init__(self, settings: S3Settings):
        self.settings = settings
        self._sigv4 = SigV4Signer(settings.accessKey, settings.secretKey, settings.region)
        self._defaultPort = {"https": 443, "http": 80}[settings.scheme]

    def _target(self, key: str | None) -> tuple[str, str, str]:
        """(Host header as the HTTP client sends it, URL path, URL without query)."""
        netloc, path, url = self.settings.objectURL(key if key is not None else "")
        host = netloc.rsplit(":", 1)[0] if netloc.endswith(f":{self._defaultPort}") else netloc
        return host, path, url

    def sign(self, method: str, key: str | None, query: dict | None = None, headers: dict | None = None) -> tuple:
        """(url, headers) authorised by an ``Authorization`` header over UNSIGNED-PAYLOAD.

        ``key=None`` addresses the bucket itself (listing).
        """
        host, path, url = self._target(key)
        query = query or {}
        signed = self._sigv4.signHeaders(method, host, path, query, dict(headers or {}))
        return (f"{url}?{canonicalQuery(query)}" if query else url), signed

    def presign(
        self, method: str, key: str | None, expiration: int, query: dict | None = None, headers: dict | None = None
    ) -> tuple:
        """(url, headers): a URL valid ``expiration`` seconds that carries its own signature.

        Headers given here are signed, so the user of the URL must send them unchanged
        (this is how a PUT URL pins the checksum metadata).
        """
        host, path, url = self._target(key)
        headers = dict(headers or {})
        return f"{url}?{self._sigv4.presignQuery(method, host, path, query or {}, headers, expiration)}", headers

    def authorise(self, s3Method: str, lfn: str, key: str, params: dict | None = None) -> dict:
        """S_OK((url, headers)) for one operation, signed here."""
        built = buildRequest(s3Method, key, params)
        if not built["OK"]:
            return built
        method, objectKey, query, headers = built["Value"]
        return S_OK(self.sign(method, objectKey, query, headers))


class GatewaySigner:
    """Gets presigned URLs from the S3Gateway: for clients that hold no S3 keys."""

    batchesRequests = True

    def __init__(self, seName: str, lfnToURL, timeout: float = 120):
        self.seName = seName
        self._lfnToURL = lfnToURL
        self._timeout = timeout

    def authoriseMany(
        self, s3Method: str, items: dict[str, tuple[str, dict | None]], expiration: int = GATEWAY_URL_SECONDS
    ) -> dict:
        """S_OK({lfn: S_OK((url, headers)) or S_ERROR}) for ``{lfn: (key, params)}``, in few gateway calls."""
        answers: dict[str, dict] = {}
        pending: dict[str, tuple[str, dict]] = {}
        for lfn, (key, params) in items.items():
            built = buildRequest(s3Method, key, params, viaGateway=True)
            if not built["OK"]:
                answers[lfn] = built
            else:
                pending[self._lfnToURL(lfn)] = (lfn, built["Value"][3])
        urls = list(pending)
        for start in range(0, len(urls), GATEWAY_BATCH):
            batch = {url: items[pending[url][0]][1] or {} for url in urls[start : start + GATEWAY_BATCH]}
            rpc = RPCClient(GATEWAY_SERVICE, timeout=self._timeout)
            result = rpc.createPresignedUrl(self.seName, s3Method, batch, expiration)
            for url in batch:
                lfn, headers = pending[url]
                if not result["OK"]:
                    answers[lfn] = S_ERROR(DErrno.ERPC, f"S3Gateway: {result['Message']}")
                elif url in result["Value"]["Successful"]:
                    answers[lfn] = S_OK((result["Value"]["Successful"][url], headers))
                else:
                    reason = result["Value"]["Failed"].get(url, "no answer for this URL")
                    errno = DErrno.EACCES if "permission" in reason else DErrno.EIO
                    answers[lfn] = S_ERROR(errno, f"S3Gateway: {reason}")
        return S_OK(answers)

    def authorise(self, s3Method: str, lfn: str, key: str, params: dict | None = None) -> dict:
        """S_OK((url, headers)) for one operation, from the gateway."""
        return self.authoriseMany(s3Method, {lfn: (key, params)})["Value"][lfn]

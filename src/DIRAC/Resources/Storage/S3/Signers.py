"""Who authorises an S3 request: the SE's own credentials, or the S3Gateway service.

Both signers answer ``authorise(s3Method, lfn, key, params)`` with the URL to
call and the headers to send, so ``S3Storage`` builds every request the same
way whichever holds the keys. ``DirectSigner`` signs locally with botocore's
SigV4 (``S3SigV4Auth`` in headers, ``S3SigV4QueryAuth`` for presigned URLs)
and botocore's credential objects (session tokens and assumed roles included);
``GatewaySigner`` asks the gateway, which checks the caller's catalog
permission first, and can do that for a whole bulk call in one round trip.

botocore's signer costs about 40 us of CPU per request (given the Host header),
against 6 us for the hand-written one it replaced: ``benchmarks/bench_signing.py``
measures it against bulk phases at 20 ms round trip: 3-13% of the client's CPU,
and on a lightly loaded machine 8% (put) and 13% (metadata) of the phase's wall
time (inside the noise on a busy one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from urllib.parse import quote

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest

from DIRAC.Core.DISET.RPCClient import RPCClient
from DIRAC.Core.Security.Locations import getProxyLocation
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Credentials import signingCredentials
from DIRAC.Resources.Storage.S3.HttpClient import S3Response
from DIRAC.Resources.Storage.S3.Methods import (
    GATEWAY_ANSWERS,
    GATEWAY_SOURCE_PARAMS,
    WRITE_URL_SECONDS,
    buildRequest,
)
from DIRAC.Resources.Storage.S3.Settings import S3Settings

GATEWAY_SERVICE = "DataManagement/S3Gateway"
GATEWAY_URL_SECONDS = 3600
GATEWAY_BATCH = 1000
#: the operations of the clean-up URLs handed with an upload, and the seconds before their expiry they are dropped
CLEANUP_METHODS = ("head_object", "delete_object")
CLEANUP_MARGIN = 30.0
#: a gateway's whole-call answers meaning "no server-side copy between these SEs here": not served by it,
#: not one S3 service, or a gateway without copies
_NO_COPY_HERE = frozenset({DErrno.EWRONGSE, DErrno.ENOMETH})
#: the body is sent apart from the signature: sign UNSIGNED-PAYLOAD, even over plain http
_UNSIGNED_PAYLOAD = SimpleNamespace(s3={"payload_signing_enabled": False})


def _withoutSource(params: dict | None) -> dict:
    """``params`` without those naming the copy's source: the gateway names it itself (and refuses them)."""
    return {name: value for name, value in (params or {}).items() if name not in GATEWAY_SOURCE_PARAMS}


def encodeQuery(query: dict) -> str:
    """A URL query in SigV4's canonical form: each name and value percent-encoded, then sorted.

    Sorting follows the encoded names (the AWS SigV4 test suite's rule), not the raw ones.
    """
    pairs = sorted((quote(str(name), safe="-_.~"), quote(str(value), safe="-_.~")) for name, value in query.items())
    return "&".join(f"{name}={value}" for name, value in pairs)


class DirectSigner:
    """Signs requests with the SE's credentials (keys, session token or assumed role)."""

    batchesRequests = False

    def __init__(self, settings: S3Settings):
        self.settings = settings
        self._credentials = signingCredentials(settings)
        netloc = settings.objectURL(None)[0]
        defaultPort = f":{443 if settings.secure else 80}"
        #: the Host header as HTTP clients send it (no default port); given to botocore, which
        #: would otherwise parse it out of every URL twice (a fifth of its signing time)
        self._host = netloc[: -len(defaultPort)] if netloc.endswith(defaultPort) else netloc

    def _request(self, method: str, key: str | None, query: dict | None, headers: dict | None) -> AWSRequest:
        url = self.settings.objectURL(key)[2]
        if query:
            url = f"{url}?{encodeQuery(query)}"
        request = AWSRequest(method=method, url=url, headers={"Host": self._host, **(headers or {})})
        request.context["client_config"] = _UNSIGNED_PAYLOAD
        return request

    def sign(self, method: str, key: str | None, query: dict | None = None, headers: dict | None = None) -> dict:
        """S_OK((url, headers)) authorised by an ``Authorization`` header over UNSIGNED-PAYLOAD.

        ``key=None`` addresses the bucket itself (listing, multi-object delete).
        """
        credentials = self._credentials.frozen()
        if not credentials["OK"]:
            return credentials
        request = self._request(method, key, query, headers)
        S3SigV4Auth(credentials["Value"], "s3", self.settings.region).add_auth(request)
        return S_OK((request.url, dict(request.headers.items())))

    def presign(
        self, method: str, key: str | None, expiration: int, query: dict | None = None, headers: dict | None = None
    ) -> dict:
        """S_OK((url, headers)): a URL valid ``expiration`` seconds that carries its own signature.

        Headers given here are signed, so the user of the URL must send them unchanged
        (this is how a PUT URL pins the checksum metadata and a delete its body's MD5).
        """
        credentials = self._credentials.frozen()
        if not credentials["OK"]:
            return credentials
        request = self._request(method, key, query, headers)
        S3SigV4QueryAuth(credentials["Value"], "s3", self.settings.region, expires=expiration).add_auth(request)
        return S_OK((request.url, dict(headers or {})))

    def authorise(self, s3Method: str, lfn: str, key: str | None, params: dict | None = None) -> dict:
        """S_OK((url, headers)) for one operation, signed here."""
        built = buildRequest(s3Method, key, params)
        if not built["OK"]:
            return built
        method, objectKey, query, headers = built["Value"]
        return self.sign(method, objectKey, query, headers)

    def authoriseCopies(self, s3Method: str, sourceSE: str, items: dict[str, tuple[str, dict]]) -> dict:
        """S_OK({lfn: S_OK((url, headers)) or S_ERROR}): copy URLs of ``{lfn: (key, params)}``, signed here.

        ``params`` name the source (``SourceBucket``, ``SourceKey``, ``SourceETag``); these keys
        must be allowed to read it (``S3Storage.canCopyServerSideFrom``: the same access key id).
        """
        return S_OK({lfn: self.authorise(s3Method, lfn, key, params) for lfn, (key, params) in items.items()})

    def authoriseDelete(self, keys: dict[str, str]) -> dict:
        """S_OK((url, headers, allowed LFNs, {lfn: refusal})) for one DeleteObjects of ``{lfn: key}``."""
        signed = self.authorise("delete_objects", "/", None, {"Keys": list(keys.values())})
        if not signed["OK"]:
            return signed
        url, headers = signed["Value"]
        return S_OK((url, headers, list(keys), {}))


def _gatewayRefusal(reason: str) -> dict:
    """S_ERROR for one URL the gateway would not sign: EACCES when it names a permission, EIO otherwise."""
    return S_ERROR(DErrno.EACCES if "permission" in reason else DErrno.EIO, f"S3Gateway: {reason}")


def _copyNotSigned(result: dict) -> dict:
    """S_ERROR for copy URLs a gateway call did not give: ``EPROTONOSUPPORT`` when the gateway cannot
    copy between these SEs (the caller streams instead), ``ERPC`` otherwise."""
    errno = DErrno.EPROTONOSUPPORT if result.get("Errno") in _NO_COPY_HERE else DErrno.ERPC
    return S_ERROR(errno, f"S3Gateway cannot sign this copy: {result['Message']}")


def _presentedProxy() -> str:
    """The proxy file this process presents to the gateway now ('' when none)."""
    return str(getProxyLocation() or "")


class GatewaySigner:
    """Gets presigned URLs from the S3Gateway: for clients that hold no S3 keys.

    The HEAD and DELETE URLs the gateway hands out with each granted upload are
    held (while valid) and used for that LFN when the gateway cannot sign (its
    catalog is down): so a failed registration can still be cleaned up.
    """

    batchesRequests = True
    #: listings the gateway answers itself (``answerListing``) instead of signing them
    answered = GATEWAY_ANSWERS

    def __init__(self, seName: str, lfnToURL, timeout: float = 120):
        self.seName = seName
        self._lfnToURL = lfnToURL
        self._timeout = timeout
        #: {(proxy, lfn): (monotonic expiry, {s3Method: url})}: the clean-up URLs the gateway gave with
        #: the uploads of the identity presenting that proxy (a process that changes proxy gets no other's)
        self._cleanUp: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._cleanUpLock = threading.Lock()

    def _keepCleanUp(self, pending: dict[str, tuple[str, dict]], urls: dict) -> None:
        """Hold the HEAD / DELETE URLs the gateway handed with granted uploads (a bit shorter than they live)."""
        now = time.monotonic()
        with self._cleanUpLock:
            for url, entry in urls.items() if isinstance(urls, dict) else ():
                if url in pending and isinstance(entry, dict):
                    lifetime = float(entry.get("Expiration", 0)) - CLEANUP_MARGIN
                    held = {m: entry[m] for m in CLEANUP_METHODS if isinstance(entry.get(m), str)}
                    self._cleanUp[(_presentedProxy(), pending[url][0])] = (now + lifetime, held)
            for stale in [held for held, (expiry, _urls) in self._cleanUp.items() if expiry <= now]:
                del self._cleanUp[stale]

    def _heldCleanUp(self, s3Method: str, lfn: str) -> str | None:
        """The held clean-up URL of ``lfn`` for ``s3Method``, while it is valid."""
        with self._cleanUpLock:
            expiry, urls = self._cleanUp.get((_presentedProxy(), lfn), (0.0, {}))
        return urls.get(s3Method) if expiry > time.monotonic() else None

    def answerListing(self, s3Method: str, lfn: str, params: dict | None = None) -> dict:
        """S_OK(S3Response) holding the gateway's listing of directory ``lfn`` (``list_objects`` or
        ``list_multipart_uploads``): an S3 listing document with only what the catalog shows the caller."""
        rpc = RPCClient(GATEWAY_SERVICE, timeout=self._timeout)
        result = rpc.getListing(self.seName, s3Method, self._lfnToURL(lfn), params or {})
        if not result["OK"]:
            # the gateway's message already names its errno; keep that errno, do not wrap it twice
            return {**S_ERROR(f"S3Gateway: {result['Message']}"), "Errno": result.get("Errno") or DErrno.ERPC}
        return S_OK(S3Response(200, {}, result["Value"].encode()))

    def authoriseMany(
        self, s3Method: str, items: dict[str, tuple[str, dict | None]], expiration: int = GATEWAY_URL_SECONDS
    ) -> dict:
        """S_OK({lfn: S_OK((url, headers)) or S_ERROR}) for ``{lfn: (key, params)}``, in few gateway calls."""

        def ask(rpc: RPCClient, batch: dict) -> dict:
            return rpc.createPresignedUrl(self.seName, s3Method, batch, expiration)

        def unanswered(result: dict) -> dict:
            return S_ERROR(DErrno.ERPC, f"S3Gateway: {result['Message']}")

        return self._authoriseInBatches(s3Method, items, ask, lambda params: params, unanswered)

    def authoriseCopies(self, s3Method: str, sourceSE: str, items: dict[str, tuple[str, dict]]) -> dict:
        """S_OK({lfn: S_OK((url, headers)) or S_ERROR}): ``copy_object`` / ``upload_part_copy`` URLs of
        ``{lfn: (key, params)}`` from SE ``sourceSE`` into this SE, signed by the gateway.

        The gateway names the source bucket and key itself and pins the ETag it sees
        (it refuses when that is not the ``SourceETag`` asked); the headers to send are
        rebuilt here from ``params``, which name the same source. A gateway that cannot
        copy between these SEs (it does not serve both, they are on different S3 services,
        it predates copies) answers ``EPROTONOSUPPORT`` for every LFN: stream instead.
        """

        def ask(rpc: RPCClient, batch: dict) -> dict:
            return rpc.presignCopy(self.seName, sourceSE, s3Method, batch, WRITE_URL_SECONDS)

        return self._authoriseInBatches(s3Method, items, ask, _withoutSource, _copyNotSigned)

    def authoriseCopyParts(self, sourceSE: str, lfn: str, key: str, params: dict, ranges: dict[int, str]) -> dict:
        """S_OK({part number: S_OK((url, headers)) or S_ERROR}): ``upload_part_copy`` URLs of the parts
        ``{number: 'bytes=first-last'}`` of one file (at most ``COPY_PARTS_PER_CALL``, ``PartURLs``'s
        window), in one gateway call.

        ``params`` name the source and the upload (``SourceBucket``, ``SourceKey``, ``SourceETag``,
        ``UploadId``); the gateway checks the catalog and HEADs the source once for all those parts.
        """
        headers: dict[int, dict] = {}
        for number, byteRange in ranges.items():
            built = buildRequest(
                "upload_part_copy", key, {**params, "PartNumber": number, "SourceRange": byteRange}, viaGateway=True
            )
            if not built["OK"]:
                return built
            headers[number] = built["Value"][3]
        url = self._lfnToURL(lfn)
        asked = {url: {**_withoutSource(params), "Parts": {str(number): ranges[number] for number in sorted(ranges)}}}
        rpc = RPCClient(GATEWAY_SERVICE, timeout=self._timeout)
        result = rpc.presignCopy(self.seName, sourceSE, "upload_part_copy", asked, WRITE_URL_SECONDS)
        signed = result["Value"]["Successful"].get(url) if result["OK"] else None
        answers: dict[int, dict] = {}
        for number in sorted(ranges):
            if not result["OK"]:
                answers[number] = _copyNotSigned(result)
            elif isinstance(signed, dict) and isinstance(signed.get(str(number)), str):
                answers[number] = S_OK((signed[str(number)], headers[number]))
            else:
                answers[number] = _gatewayRefusal(result["Value"]["Failed"].get(url, "no URL for this part"))
        return S_OK(answers)

    def _authoriseInBatches(
        self,
        s3Method: str,
        items: dict[str, tuple[str, dict | None]],
        ask: Callable[[RPCClient, dict], dict],
        sent: Callable[[dict | None], dict],
        unanswered: Callable[[dict], dict],
    ) -> dict:
        """S_OK({lfn: S_OK((url, headers)) or S_ERROR}): ``ask(rpc, {url: sent(params)})`` for
        batches of ``GATEWAY_BATCH``; a call the gateway does not answer becomes ``unanswered(result)``
        for its LFNs (unless a held clean-up URL serves)."""
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
            batch = {url: sent(items[pending[url][0]][1]) for url in urls[start : start + GATEWAY_BATCH]}
            result = ask(RPCClient(GATEWAY_SERVICE, timeout=self._timeout), batch)
            if result["OK"]:
                self._keepCleanUp(pending, result["Value"].get("CleanUp"))
            for url in batch:
                lfn, headers = pending[url]
                held = self._heldCleanUp(s3Method, lfn)
                refused = not result["OK"] or url not in result["Value"]["Successful"]
                if refused and held:
                    # The gateway cannot check (the catalog is down?): the URL it gave with our upload does.
                    answers[lfn] = S_OK((held, headers))
                elif not result["OK"]:
                    answers[lfn] = unanswered(result)
                elif url in result["Value"]["Successful"]:
                    answers[lfn] = S_OK((result["Value"]["Successful"][url], headers))
                else:
                    answers[lfn] = _gatewayRefusal(result["Value"]["Failed"].get(url, "no answer for this URL"))
        return S_OK(answers)

    def authorise(self, s3Method: str, lfn: str, key: str, params: dict | None = None) -> dict:
        """S_OK((url, headers)) for one operation, from the gateway."""
        return self.authoriseMany(s3Method, {lfn: (key, params)})["Value"][lfn]

    def authoriseDelete(self, keys: dict[str, str]) -> dict:
        """S_OK((url, headers, allowed LFNs, {lfn: refusal})) for one DeleteObjects of ``{lfn: key}``.

        The gateway checks that the caller may remove each LFN, then signs one
        request whose Content-MD5 binds the XML body naming exactly the allowed
        keys; the body is rebuilt here with the same function (``deleteObjectsBody``).
        """
        urls = {self._lfnToURL(lfn): lfn for lfn in keys}
        rpc = RPCClient(GATEWAY_SERVICE, timeout=self._timeout)
        result = rpc.presignDeleteObjects(self.seName, list(urls), GATEWAY_URL_SECONDS)
        if not result["OK"]:
            return S_ERROR(DErrno.ERPC, f"S3Gateway: {result['Message']}")
        answer = result["Value"]
        refused = {urls[url]: _gatewayRefusal(reason) for url, reason in answer["Failed"].items() if url in urls}
        allowed = [urls[url] for url in answer["Successful"] if url in urls]
        missing = [lfn for lfn in keys if lfn not in refused and lfn not in allowed]
        refused.update(dict.fromkeys(missing, _gatewayRefusal("no answer for this URL")))
        return S_OK((answer.get("URL", ""), answer.get("Headers", {}), allowed, refused))

"""Authorising S3 requests with the SE's own keys (SigV4, signed by botocore).

A signer turns ``(method, key, query, headers)`` into a URL and the headers to
send. ``DirectSigner`` signs locally; the gateway-backed signer (no keys on the
client) gets the same answers from the S3Gateway service.
"""

from __future__ import annotations

from urllib.parse import urlencode

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from DIRAC.Resources.Storage.S3.Settings import S3Settings

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class DirectSigner:
    """Signs requests with the access key pair from the SE configuration."""

    def __init__(self, settings: S3Settings):
        self.settings = settings
        self._credentials = Credentials(settings.accessKey, settings.secretKey)

    def _request(self, method: str, key: str, query: dict | None, headers: dict | None) -> AWSRequest:
        _netloc, _path, url = self.settings.objectURL(key) if key is not None else self._bucketURL()
        if query:
            url = f"{url}?{urlencode(sorted(query.items()))}"
        return AWSRequest(method=method, url=url, headers=dict(headers or {}))

    def _bucketURL(self) -> tuple[str, str, str]:
        netloc, path, url = self.settings.objectURL("")
        return netloc, path, url

    def sign(self, method: str, key: str | None, query: dict | None = None, headers: dict | None = None) -> tuple:
        """(url, headers) authorised by an ``Authorization`` header; the payload is not hashed.

        ``key=None`` addresses the bucket itself (listing).
        """
        request = self._request(method, key, query, {**(headers or {}), "X-Amz-Content-SHA256": UNSIGNED_PAYLOAD})
        S3SigV4Auth(self._credentials, "s3", self.settings.region).add_auth(request)
        return request.url, dict(request.headers.items())

    def presign(
        self, method: str, key: str | None, expiration: int, query: dict | None = None, headers: dict | None = None
    ) -> tuple:
        """(url, headers): a URL valid ``expiration`` seconds that carries its own signature.

        Headers given here are signed, so the user of the URL must send them unchanged
        (this is how a PUT URL pins the checksum metadata).
        """
        request = self._request(method, key, query, headers)
        S3SigV4QueryAuth(self._credentials, "s3", self.settings.region, expires=expiration).add_auth(request)
        signedHeaders = {name: value for name, value in request.headers.items() if name.lower() != "host"}
        return request.url, signedHeaders

"""AWS Signature Version 4 for S3, header and query (presigned) forms.

Why our own: signing is on the CPU-bound path of every small-object request.
botocore derives the signing key again for every request (four HMACs) and
rebuilds its request model; here the key is derived once per day and region, and
a request costs one SHA-256 and one HMAC (measured: 6 us instead of 54 us).
The algorithm is AWS's published one; the tests run it against rclone, which
checks every signature.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_SIGNED_PREFIXES = ("x-amz-",)
_SIGNED_NAMES = {"host", "content-length", "content-type", "content-md5", "if-none-match"}


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonicalQuery(query: dict[str, str]) -> str:
    """Query parameters encoded and sorted as SigV4 wants (also usable as the URL's query)."""
    return "&".join(f"{_encode(k)}={_encode(str(v))}" for k, v in sorted(query.items()))


class SigV4Signer:
    """Signs S3 requests for one key pair and region."""

    def __init__(self, accessKey: str, secretKey: str, region: str):
        self._accessKey = accessKey
        self._secretKey = secretKey
        self._region = region
        self._lock = threading.Lock()
        self._keyDay = ""
        self._key = b""

    def _signingKey(self, day: str) -> bytes:
        with self._lock:
            if day != self._keyDay:
                key = ("AWS4" + self._secretKey).encode()
                for part in (day, self._region, "s3", "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._keyDay, self._key = day, key
            return self._key

    def _signature(self, method, path, query, headers, stamp, payload) -> tuple[str, str, str]:
        """(signature, signed header names, credential scope)."""
        names = sorted(headers)
        canonicalHeaders = "".join(f"{name}:{' '.join(str(headers[name]).split())}\n" for name in names)
        signedNames = ";".join(names)
        request = "\n".join((method, path, canonicalQuery(query), canonicalHeaders, signedNames, payload))
        day = stamp[:8]
        scope = f"{day}/{self._region}/s3/aws4_request"
        toSign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(self._signingKey(day), toSign.encode(), hashlib.sha256).hexdigest()
        return signature, signedNames, scope

    def signHeaders(self, method: str, netloc: str, path: str, query: dict, headers: dict) -> dict:
        """The headers to send: ``headers`` plus date, payload and ``Authorization``.

        ``path`` is the URL path exactly as sent (already percent-encoded).
        """
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        toSign = {name.lower(): value for name, value in headers.items() if _isSigned(name)}
        toSign.update({"host": netloc, "x-amz-date": stamp, "x-amz-content-sha256": UNSIGNED_PAYLOAD})
        signature, signedNames, scope = self._signature(method, path, query, toSign, stamp, UNSIGNED_PAYLOAD)
        credential = f"Credential={self._accessKey}/{scope}"
        authorization = f"{ALGORITHM} {credential}, SignedHeaders={signedNames}, Signature={signature}"
        sent = {name: value for name, value in headers.items() if name.lower() not in toSign}
        sent.update({name: value for name, value in toSign.items() if name != "host"})
        sent["Authorization"] = authorization
        return sent

    def presignQuery(self, method: str, netloc: str, path: str, query: dict, headers: dict, expiration: int) -> str:
        """The full query string of a URL valid ``expiration`` seconds; ``headers`` must be sent as signed."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        toSign = {name.lower(): value for name, value in headers.items() if _isSigned(name)}
        toSign["host"] = netloc
        day = stamp[:8]
        full = dict(query)
        full.update(
            {
                "X-Amz-Algorithm": ALGORITHM,
                "X-Amz-Credential": f"{self._accessKey}/{day}/{self._region}/s3/aws4_request",
                "X-Amz-Date": stamp,
                "X-Amz-Expires": str(expiration),
                "X-Amz-SignedHeaders": ";".join(sorted(toSign)),
            }
        )
        signature, _names, _scope = self._signature(method, path, full, toSign, stamp, UNSIGNED_PAYLOAD)
        return f"{canonicalQuery(full)}&X-Amz-Signature={signature}"


def _isSigned(name: str) -> bool:
    lower = name.lower()
    return lower in _SIGNED_NAMES or lower.startswith(_SIGNED_PREFIXES)

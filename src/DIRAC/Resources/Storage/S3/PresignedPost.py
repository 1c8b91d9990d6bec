"""Presigned POST forms: how a DIRAC 9 client without keys uploads through a gateway.

DIRAC 9's S3 plugin asks the gateway for ``put_object`` with
``{url: {"x-amz-meta-checksum": adler32}}`` and sends the file as a browser-style
form upload to the answer ``{"url": ..., "fields": {...}}``. The form's policy,
signed here with botocore's SigV4 POST signer, pins what the upload may be: the
bucket, the exact key, the checksum metadata and the size range; it expires
with the URL. The store checks the policy (AWS, MinIO, Ceph and moto do).
"""

from __future__ import annotations

import datetime

from botocore.auth import S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from DIRAC.Resources.Storage.S3.Methods import CHECKSUM_HEADER
from DIRAC.Resources.Storage.S3.Settings import S3Settings
from DIRAC.Resources.Storage.S3.TransferSettings import MAX_SINGLE_PUT


def postPolicy(settings: S3Settings, key: str, checksum: str, expiration: int, maxSize: int) -> dict:
    """The policy document of an upload of ``key`` carrying ``checksum``, valid ``expiration`` seconds."""
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expiration)
    return {
        "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [
            {"bucket": settings.bucket},
            {"key": key},
            {CHECKSUM_HEADER: checksum},
            ["content-length-range", 0, maxSize],
        ],
    }


def presignPost(
    settings: S3Settings,
    credentials: ReadOnlyCredentials,
    key: str,
    checksum: str,
    expiration: int,
    maxSize: int = MAX_SINGLE_PUT,
) -> dict:
    """``{"url", "fields"}``: a form that uploads at most ``maxSize`` bytes to ``key`` with ``checksum``.

    ``maxSize`` defaults to S3's largest single upload (5 GiB): a form cannot carry more.

    ``credentials``: the SE's signing credentials (``Credentials.signingCredentials``); a
    session token, when there is one, goes into the fields and the policy.
    """
    _netloc, _path, url = settings.objectURL("")
    request = AWSRequest(method="POST", url=url)
    request.context["s3-presign-post-fields"] = {"key": key, CHECKSUM_HEADER: checksum}
    request.context["s3-presign-post-policy"] = postPolicy(settings, key, checksum, expiration, maxSize)
    S3SigV4PostAuth(credentials, "s3", settings.region).add_auth(request)
    return {"url": url, "fields": dict(request.context["s3-presign-post-fields"])}

"""S3 error answers, classified in one table: retryable or not, and what a person should do.

S3 names each failure with a code in an XML ``<Error>`` document (``NoSuchBucket``,
``SlowDown``, ...). Answers without a body (HEAD) only have their HTTP status; it
stands for the usual code. The transport retries what the table marks retryable;
``S3Storage`` turns the rest into an ``S_ERROR`` whose message names the SE option
or the action that fixes it. s3fs's ``errors.py`` is the model.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR


@dataclass(frozen=True)
class S3ErrorKind:
    """What an S3 error code means here: its DIRAC errno, whether to retry, what to do.

    ``advice`` may name ``{se}``, ``{bucket}``, ``{endpoint}``, ``{region}`` and ``{skew}``.
    """

    errno: int
    retryable: bool
    advice: str


_SLOW = "the S3 server asks clients to slow down; retried with backoff, lower the SE's MaxWorkers if it persists"
_KEYS = "check the SE's Aws_access_key_id and Aws_secret_access_key in the local dirac.cfg"
_RETRY_LATER = "the S3 server failed or is unavailable for now; retried, try again later"

ERRORS: dict[str, S3ErrorKind] = {
    # retried: the request was not applied and may succeed later
    "SlowDown": S3ErrorKind(DErrno.EIO, True, _SLOW),
    "Throttling": S3ErrorKind(DErrno.EIO, True, _SLOW),
    "ThrottlingException": S3ErrorKind(DErrno.EIO, True, _SLOW),
    "TooManyRequests": S3ErrorKind(DErrno.EIO, True, _SLOW),
    "RequestLimitExceeded": S3ErrorKind(DErrno.EIO, True, _SLOW),
    "InternalError": S3ErrorKind(DErrno.EIO, True, _RETRY_LATER),
    "ServiceUnavailable": S3ErrorKind(DErrno.EIO, True, _RETRY_LATER),
    "RequestTimeout": S3ErrorKind(
        DErrno.ETIMEDOUT, True, "the S3 server gave up waiting for the request's bytes; retried, check the network"
    ),
    # not retried: the same request would fail again
    "RequestTimeTooSkewed": S3ErrorKind(
        DErrno.EACCES, False, "this host's clock {skew}; S3 accepts 15 minutes at most: fix the clock (NTP)"
    ),
    "SignatureDoesNotMatch": S3ErrorKind(
        DErrno.EACCES,
        False,
        "the server computed another signature: check Aws_secret_access_key of SE {se} in the local dirac.cfg, "
        "and its Region ({region}) and AddressingStyle options",
    ),
    "InvalidAccessKeyId": S3ErrorKind(DErrno.EACCES, False, f"the S3 server does not know this access key: {_KEYS}"),
    "AuthorizationHeaderMalformed": S3ErrorKind(
        DErrno.ECONF, False, "the request names the wrong region: set the SE's Region option (now {region})"
    ),
    "ExpiredToken": S3ErrorKind(DErrno.EACCES, False, "the temporary credentials expired: renew the session token"),
    "InvalidToken": S3ErrorKind(DErrno.EACCES, False, "the session token is not valid: check Aws_session_token"),
    "AccessDenied": S3ErrorKind(
        DErrno.EACCES, False, "the keys of SE {se} may not do this: check the bucket policy and the key's rights"
    ),
    "AllAccessDisabled": S3ErrorKind(DErrno.EACCES, False, "all access to bucket {bucket} is disabled"),
    "AccountProblem": S3ErrorKind(DErrno.EACCES, False, "the S3 account is blocked: contact the storage provider"),
    "NoSuchBucket": S3ErrorKind(
        DErrno.ECONF, False, "bucket {bucket} does not exist at {endpoint} (check the SE's Path option)"
    ),
    "InvalidBucketName": S3ErrorKind(DErrno.ECONF, False, "bucket {bucket} is not a valid name (the SE's Path option)"),
    "PermanentRedirect": S3ErrorKind(
        DErrno.ECONF, False, "bucket {bucket} lives at another endpoint: check the SE's Host and Region options"
    ),
    "NoSuchKey": S3ErrorKind(DErrno.ENOENT, False, "no such file"),
    "NoSuchUpload": S3ErrorKind(
        DErrno.ENOENT, False, "the multipart upload is gone (aborted or completed meanwhile): upload again"
    ),
    "BadDigest": S3ErrorKind(
        DErrno.EBADCKS,
        False,
        "the bytes the server received differ from their Content-MD5: the file changed or was damaged on the way, "
        "upload again",
    ),
    "InvalidDigest": S3ErrorKind(DErrno.EBADCKS, False, "the Content-MD5 sent is not valid"),
    "XAmzContentSHA256Mismatch": S3ErrorKind(
        DErrno.EBADCKS, False, "the bytes the server received differ from their SHA-256: upload again"
    ),
    "IncompleteBody": S3ErrorKind(
        DErrno.EFILESIZE, False, "the server received fewer bytes than announced: the local file changed, upload again"
    ),
    "PreconditionFailed": S3ErrorKind(
        DErrno.EEXIST, False, "the object exists already; not overwritten (a conditional request was refused)"
    ),
    "EntityTooLarge": S3ErrorKind(
        DErrno.EFBIG,
        False,
        "the object or part is larger than the server accepts (S3: 5 GiB per PUT or part): "
        "lower the SE's MultipartThreshold / MultipartChunkSize",
    ),
    "EntityTooSmall": S3ErrorKind(
        DErrno.EINVAL, False, "a multipart part is below the server's minimum (S3: 5 MiB): raise MultipartChunkSize"
    ),
    "InvalidPart": S3ErrorKind(DErrno.EIO, False, "a part of the multipart upload is missing or changed: upload again"),
    "InvalidPartOrder": S3ErrorKind(DErrno.EIO, False, "the parts were listed out of order: upload again"),
    "KeyTooLongError": S3ErrorKind(DErrno.EINVAL, False, "the object key is longer than 1024 bytes: use a shorter LFN"),
    "InvalidRange": S3ErrorKind(DErrno.EFILESIZE, False, "the byte range asked is outside the object"),
    "QuotaExceeded": S3ErrorKind(DErrno.ENOSPC, False, "the bucket's or account's quota is used up"),
    "InvalidObjectState": S3ErrorKind(
        DErrno.EIO, False, "the object is archived (e.g. Glacier): restore it before reading"
    ),
    "MethodNotAllowed": S3ErrorKind(DErrno.EPERM, False, "the server does not allow this operation on this resource"),
    "NotImplemented": S3ErrorKind(DErrno.EIO, False, "the S3 server does not implement this operation"),
}

#: the code an answer without an XML body stands for, by HTTP status
STATUS_CODES: dict[int, str] = {
    403: "AccessDenied",
    404: "NoSuchKey",
    412: "PreconditionFailed",
    416: "InvalidRange",
    429: "TooManyRequests",
    500: "InternalError",
    501: "NotImplemented",
    502: "ServiceUnavailable",
    503: "ServiceUnavailable",
    504: "ServiceUnavailable",
}

#: codes worth sending the same request again for
RETRYABLE_CODES = frozenset(code for code, kind in ERRORS.items() if kind.retryable)


def parseError(body: bytes) -> tuple[str, str]:
    """(code, message) of an S3 ``<Error>`` document; ('', '') when ``body`` is not one."""
    if not body.lstrip().startswith(b"<"):
        return "", ""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "", ""
    if root.tag.rsplit("}", 1)[-1] != "Error":
        return "", ""
    return (root.findtext("Code") or "").strip(), (root.findtext("Message") or "").strip()


def clockSkew(serverDate: str, now: float | None = None) -> str:
    """How this host's clock differs from the server's ``Date`` header, in words."""
    try:
        difference = (time.time() if now is None else now) - parsedate_to_datetime(serverDate).timestamp()
    except (TypeError, ValueError):
        return "differs from the S3 server's (its answer carried no readable Date)"
    minutes, seconds = divmod(round(abs(difference)), 60)
    direction = "ahead of" if difference > 0 else "behind"
    return f"is {minutes} min {seconds} s {direction} the S3 server's"


def codeOf(status: int, code: str) -> str:
    """The error code of an answer: its own, else the one its HTTP status stands for."""
    return code or STATUS_CODES.get(status, "")


def s3Error(status: int, code: str, serverMessage: str, serverDate: str, settings, action: str, where: str) -> dict:
    """S_ERROR for a failed S3 answer: what failed, the code, and what to do about it.

    ``settings`` is the SE's ``S3Settings`` (its name, bucket, endpoint and region fill the advice).
    """
    guessed = not code
    code = codeOf(status, code)
    kind = ERRORS.get(code)
    shown = f"{code} (HTTP {status})" if code else f"HTTP {status}"
    if kind is None:
        detail = f": {serverMessage}" if serverMessage else ""
        return S_ERROR(DErrno.EIO, f"cannot {action} {where}: S3 server answered {shown}{detail}")
    advice = kind.advice.format(
        se=settings.seName,
        bucket=settings.bucket,
        endpoint=settings.endpoint,
        region=settings.region,
        skew=clockSkew(serverDate) if code == "RequestTimeTooSkewed" else "",
    )
    if guessed and status == 403:
        advice += f" (the answer gave no reason: also {_KEYS[0].lower()}{_KEYS[1:]} and this host's clock)"
    return S_ERROR(kind.errno, f"cannot {action} {where}: {advice} [{shown}]")

"""The options of an S3 protocol section, parsed and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.TransferSettings import TransferSettings, parseTransferSettings

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 refuses longer
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
#: AssumeRole session lifetime bounds (STS's own)
MIN_ROLE_SECONDS, MAX_ROLE_SECONDS = 900, 43200


def isBucketName(name: object) -> bool:
    """True for a valid S3 bucket name (3..63 lower-case letters, digits, dots and dashes)."""
    return isinstance(name, str) and bool(_BUCKET_NAME.match(name))


@dataclass(frozen=True)
class AssumedRole:
    """An IAM role the SE's keys assume through STS (``Aws_role_arn`` and its companions)."""

    arn: str
    sessionName: str
    durationSeconds: int
    stsEndpoint: str


@dataclass(frozen=True)
class S3Settings:
    """Connection settings of one S3 storage element; ``transfer`` holds how bytes move."""

    seName: str
    host: str
    port: int
    secure: bool
    bucket: str
    keyPrefix: str
    region: str
    addressingStyle: str
    verify: bool | str
    transfer: TransferSettings
    accessKey: str
    #: never in ``repr()`` / ``str()`` (they end up in logs and tracebacks)
    secretKey: str = field(repr=False)
    sessionToken: str = field(default="", repr=False)
    role: AssumedRole | None = None

    @property
    def hasKeys(self) -> bool:
        """True when this configuration holds both Aws options (direct access)."""
        return bool(self.accessKey and self.secretKey)

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    @property
    def endpoint(self) -> str:
        """``scheme://host:port`` of the S3 service."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def objectKey(self, lfn: str) -> str:
        """The S3 key of an LFN: the LFN without its leading '/', under the SE's key prefix."""
        return self.keyPrefix + lfn.lstrip("/")

    def listPrefix(self, lfn: str) -> str:
        """The key prefix that lists directory ``lfn`` (the bucket's top for '/')."""
        return self.keyPrefix if lfn == "/" else self.objectKey(lfn).rstrip("/") + "/"

    def objectURL(self, key: str | None) -> tuple[str, str, str]:
        """(netloc, path, full URL) of ``key`` for the configured addressing style; None: the bucket."""
        quotedKey = quote(key, safe="/~") if key is not None else None
        if self.addressingStyle == "virtual":
            netloc, path = f"{self.bucket}.{self.host}:{self.port}", f"/{quotedKey or ''}"
        else:
            netloc = f"{self.host}:{self.port}"
            path = f"/{self.bucket}" if quotedKey is None else f"/{self.bucket}/{quotedKey}"
        return netloc, path, f"{self.scheme}://{netloc}{path}"


def parseBool(value: Any, default: bool) -> bool | None:
    """Read a cfg boolean case-insensitively; None when it is not one."""
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def parseS3Settings(seName: str, options: dict) -> dict:
    """S_OK(S3Settings) from a protocol section's options; S_ERROR naming the SE and the bad option."""

    def fail(option: str, why: str) -> dict:
        return S_ERROR(DErrno.ECONF, f"SE {seName}: option {option} {why}")

    host = str(options.get("Host", "")).strip()
    if not host:
        return fail("Host", "is missing (the S3 server's host name)")
    secure = parseBool(options.get("SecureConnection"), True)
    if secure is None:
        return fail("SecureConnection", f"must be True or False, not {options.get('SecureConnection')!r}")
    path = str(options.get("Path", "")).strip("/")
    if not path:
        return fail("Path", "is missing (the bucket name)")
    bucket, _, prefix = path.partition("/")
    if not isBucketName(bucket):
        return fail("Path", f"must start with a valid bucket name, not {bucket!r}")
    region = str(options.get("Region", "") or "us-east-1").strip()
    style = str(options.get("AddressingStyle", "path") or "path").strip().lower()
    if style not in ("path", "virtual"):
        return fail("AddressingStyle", f"must be path or virtual, not {style!r}")
    if style == "virtual" and "." in bucket and secure:
        return fail(
            "AddressingStyle",
            f"virtual with bucket {bucket!r} would make the host name {bucket}.{host}, which no "
            "wildcard TLS certificate matches (names with dots): set AddressingStyle = path",
        )
    accessKey = str(options.get("Aws_access_key_id", "")).strip()
    secretKey = str(options.get("Aws_secret_access_key", "")).strip()
    if bool(accessKey) != bool(secretKey):
        return fail("Aws_access_key_id/Aws_secret_access_key", "must be given together (or both left out)")
    sessionToken = str(options.get("Aws_session_token", "") or "").strip()
    if sessionToken and not accessKey:
        return fail("Aws_session_token", "needs Aws_access_key_id and Aws_secret_access_key")
    role = _assumedRole(seName, options, region, bool(accessKey))
    if not role["OK"]:
        return role
    verify = options.get("CABundle") or parseBool(options.get("VerifySSL"), True)
    if verify is None:
        return fail("VerifySSL", f"must be True or False, not {options.get('VerifySSL')!r}")
    port = _port(options.get("Port"), 443 if secure else 80)
    if port is None:
        return fail("Port", f"must be a whole number between 1 and 65535, not {options.get('Port')!r}")
    transfer, problem = parseTransferSettings(options)
    if transfer is None:
        return S_ERROR(DErrno.ECONF, f"SE {seName}: {problem}")
    return S_OK(
        S3Settings(
            seName=seName,
            host=host.lower(),
            port=port,
            secure=secure,
            bucket=bucket,
            keyPrefix=f"{prefix}/" if prefix else "",
            region=region,
            addressingStyle=style,
            verify=verify,
            transfer=transfer,
            accessKey=accessKey,
            secretKey=secretKey,
            sessionToken=sessionToken,
            role=role["Value"],
        )
    )


def _port(raw: Any, default: int) -> int | None:
    if raw in ("", None):
        return default
    try:
        port = int(str(raw).strip())
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


def _assumedRole(seName: str, options: dict, region: str, hasKeys: bool) -> dict:
    """S_OK(AssumedRole or None) from ``Aws_role_arn``, ``Aws_role_session_name``,
    ``Aws_role_duration`` (seconds) and ``StsEndpoint``."""
    arn = str(options.get("Aws_role_arn", "") or "").strip()
    if not arn:
        return S_OK(None)
    if not hasKeys:
        return S_ERROR(DErrno.ECONF, f"SE {seName}: option Aws_role_arn needs the keys that may assume the role")
    if not arn.startswith("arn:"):
        return S_ERROR(DErrno.ECONF, f"SE {seName}: option Aws_role_arn must be a role ARN (arn:...), not {arn!r}")
    raw = options.get("Aws_role_duration", "") or 3600
    try:
        duration = int(str(raw).strip())
    except ValueError:
        duration = 0
    if not MIN_ROLE_SECONDS <= duration <= MAX_ROLE_SECONDS:
        return S_ERROR(
            DErrno.ECONF,
            f"SE {seName}: option Aws_role_duration must be {MIN_ROLE_SECONDS}..{MAX_ROLE_SECONDS} seconds, "
            f"not {raw!r}",
        )
    sessionName = str(options.get("Aws_role_session_name", "") or f"dirac-{seName}").strip()
    if not re.fullmatch(r"[\w+=,.@-]{2,64}", sessionName):
        return S_ERROR(DErrno.ECONF, f"SE {seName}: option Aws_role_session_name is not a valid session name")
    endpoint = str(options.get("StsEndpoint", "") or f"https://sts.{region}.amazonaws.com").strip()
    return S_OK(AssumedRole(arn, sessionName, duration, endpoint))

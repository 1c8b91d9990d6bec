"""The options of an S3 protocol section, parsed and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

MiB = 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 refuses longer
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class S3Settings:
    """Connection and transfer settings of one S3 storage element."""

    seName: str
    host: str
    port: int
    secure: bool
    bucket: str
    keyPrefix: str
    region: str
    addressingStyle: str
    verify: bool | str
    connectTimeout: float
    readTimeout: float
    retries: int
    multipartThreshold: int
    partSize: int
    accessKey: str
    #: never in ``repr()`` / ``str()`` (they end up in logs and tracebacks)
    secretKey: str = field(repr=False)

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

    def objectURL(self, key: str) -> tuple[str, str, str]:
        """(netloc, path, full URL) of ``key`` for the configured addressing style."""
        quotedKey = quote(key, safe="/~")
        if self.addressingStyle == "virtual":
            netloc, path = f"{self.bucket}.{self.host}:{self.port}", f"/{quotedKey}"
        else:
            netloc, path = f"{self.host}:{self.port}", f"/{self.bucket}/{quotedKey}"
        return netloc, path, f"{self.scheme}://{netloc}{path}"


def parseBool(value: Any, default: bool) -> bool | None:
    """Read a cfg boolean case-insensitively; None when it is not one."""
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def _number(options: dict, name: str, default: float, kind=float, minimum: float = 0) -> float:
    raw = options.get(name, "")
    if raw in ("", None):
        return default
    value = kind(str(raw).strip())
    if value < minimum:
        raise ValueError(f"{value} is below {minimum}")
    return value


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
    if not _BUCKET_NAME.match(bucket):
        return fail("Path", f"must start with a valid bucket name, not {bucket!r}")
    style = str(options.get("AddressingStyle", "path") or "path").strip().lower()
    if style not in ("path", "virtual"):
        return fail("AddressingStyle", f"must be path or virtual, not {style!r}")
    accessKey = str(options.get("Aws_access_key_id", "")).strip()
    secretKey = str(options.get("Aws_secret_access_key", "")).strip()
    if bool(accessKey) != bool(secretKey):
        return fail("Aws_access_key_id/Aws_secret_access_key", "must be given together (or both left out)")
    verify = options.get("CABundle") or parseBool(options.get("VerifySSL"), True)
    if verify is None:
        return fail("VerifySSL", f"must be True or False, not {options.get('VerifySSL')!r}")
    numbers: dict[str, float] = {}
    for name, default, kind, minimum in (
        ("Port", 443 if secure else 80, int, 1),
        ("ConnectTimeout", 10.0, float, 0.1),
        ("ReadTimeout", 120.0, float, 0.1),
        ("Retries", 3, int, 0),
        ("MultipartThreshold", 16 * MiB, int, 5 * MiB),
        ("MultipartChunkSize", 16 * MiB, int, 5 * MiB),
    ):
        try:
            numbers[name] = _number(options, name, default, kind, minimum)
        except ValueError:
            return fail(name, f"must be a number >= {minimum}, not {options.get(name)!r}")
    if numbers["Port"] > 65535:
        return fail("Port", f"must be at most 65535, not {numbers['Port']}")
    return S_OK(
        S3Settings(
            seName=seName,
            host=host.lower(),
            port=int(numbers["Port"]),
            secure=secure,
            bucket=bucket,
            keyPrefix=f"{prefix}/" if prefix else "",
            region=str(options.get("Region", "") or "us-east-1").strip(),
            addressingStyle=style,
            verify=verify,
            connectTimeout=numbers["ConnectTimeout"],
            readTimeout=numbers["ReadTimeout"],
            retries=int(numbers["Retries"]),
            multipartThreshold=int(numbers["MultipartThreshold"]),
            partSize=int(numbers["MultipartChunkSize"]),
            accessKey=accessKey,
            secretKey=secretKey,
        )
    )

"""The credentials an S3 SE signs with: botocore's credential objects.

Static keys (``Aws_access_key_id``, ``Aws_secret_access_key``), optionally with
a session token (``Aws_session_token``, sent as ``x-amz-security-token``), or a
role the keys assume through STS (``Aws_role_arn``): botocore's
``RefreshableCredentials`` then calls ``AssumeRole`` again before the temporary
keys expire (a quarter of their lifetime before, at most 15 minutes), so a
long bulk call never signs with expired keys. When STS cannot be reached, that
answer is kept ``RETRY_STS_SECONDS`` so a bulk call does not ask it once per
file. One credentials object per key pair and role is shared by every SE object
of the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.S3.Settings import S3Settings

#: botocore's own refresh margins, shortened for short sessions
ADVISORY_REFRESH_SECONDS = 15 * 60
MANDATORY_REFRESH_SECONDS = 10 * 60
#: how long a failed AssumeRole is the answer before STS is asked again
RETRY_STS_SECONDS = 10.0

_cacheLock = threading.Lock()
_cache: dict[tuple, SigningCredentials] = {}


class SigningCredentials:
    """Frozen credentials on demand: ``frozen() -> S_OK(ReadOnlyCredentials)`` or S_ERROR."""

    def __init__(self, settings: S3Settings, assumeRole: Callable[[], dict] | None = None):
        self._settings = settings
        self._static = Credentials(settings.accessKey, settings.secretKey, settings.sessionToken or None)
        self._assumeRole = assumeRole
        self._refreshable: RefreshableCredentials | None = None
        self._lock = threading.Lock()
        self._failure: tuple[float, dict] | None = None

    def frozen(self) -> dict:
        """The key pair (and token) to sign one request with, refreshed first when it is due."""
        role = self._settings.role
        if role is None:
            return S_OK(self._static.get_frozen_credentials())
        failure = self._failure
        if failure is not None and time.monotonic() < failure[0]:
            return failure[1]
        try:
            with self._lock:
                if self._refreshable is None:
                    margin = min(ADVISORY_REFRESH_SECONDS, role.durationSeconds // 4)
                    self._refreshable = RefreshableCredentials.create_from_metadata(
                        metadata=self._assumeRole(),
                        refresh_using=self._assumeRole,
                        method="assume-role",
                        advisory_timeout=margin,
                        mandatory_timeout=min(MANDATORY_REFRESH_SECONDS, margin // 2),
                    )
            frozen: ReadOnlyCredentials = self._refreshable.get_frozen_credentials()
        except (BotoCoreError, ClientError) as exc:
            refused = S_ERROR(
                DErrno.EACCES,
                f"SE {self._settings.seName}: cannot assume role {role.arn} at {role.stsEndpoint} "
                f"(options Aws_role_arn, StsEndpoint): {exc}",
            )
            self._failure = (time.monotonic() + RETRY_STS_SECONDS, refused)
            return refused
        self._failure = None
        return S_OK(frozen)


def _stsAssumeRole(settings: S3Settings) -> Callable[[], dict]:
    """A function calling STS AssumeRole with the SE's keys, answering botocore's credential metadata."""
    role = settings.role
    client = botocore.session.Session().create_client(
        "sts",
        region_name=settings.region,
        endpoint_url=role.stsEndpoint,
        aws_access_key_id=settings.accessKey,
        aws_secret_access_key=settings.secretKey,
        aws_session_token=settings.sessionToken or None,
        verify=settings.verify,
        config=Config(
            connect_timeout=settings.transfer.connectTimeout,
            read_timeout=settings.transfer.readTimeout,
            retries={"total_max_attempts": settings.transfer.retries + 1, "mode": "standard"},
        ),
    )

    def assumeRole() -> dict:
        answer = client.assume_role(
            RoleArn=role.arn, RoleSessionName=role.sessionName, DurationSeconds=role.durationSeconds
        )["Credentials"]
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": answer["Expiration"].isoformat(),
        }

    return assumeRole


def signingCredentials(settings: S3Settings) -> SigningCredentials:
    """The shared credentials of ``settings``' keys (and role)."""
    key = (
        settings.accessKey,
        settings.secretKey,
        settings.sessionToken,
        settings.role,
        settings.region,
        settings.verify,
    )
    with _cacheLock:
        if key not in _cache:
            assumeRole = _stsAssumeRole(settings) if settings.role else None
            _cache[key] = SigningCredentials(settings, assumeRole)
        return _cache[key]

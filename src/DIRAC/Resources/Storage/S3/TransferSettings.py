"""How an S3 storage element moves bytes: one validated settings object per SE.

Modelled on s3transfer's ``TransferConfig``: every tunable of a transfer lives
here, read once from the SE's protocol section, each bounded so that a typo
is a configuration error naming the option rather than a transfer that fails
hours later. The bounds that come from S3 itself (part sizes, part count,
object and single-PUT size) are the module's constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB

#: S3's limits (AWS documents them; Ceph, MinIO and the others follow)
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10000
MAX_OBJECT_SIZE = 5 * TiB
MAX_SINGLE_PUT = 5 * GiB


@dataclass(frozen=True)
class _Option:
    """One cfg option: its name, type, default and inclusive bounds."""

    name: str
    kind: type
    default: float
    minimum: float
    maximum: float
    unit: str = ""


#: attribute -> option of the protocol section
OPTIONS: dict[str, _Option] = {
    "multipartThreshold": _Option("MultipartThreshold", int, 16 * MiB, MIN_PART_SIZE, MAX_SINGLE_PUT, "bytes"),
    "partSize": _Option("MultipartChunkSize", int, 16 * MiB, MIN_PART_SIZE, MAX_PART_SIZE, "bytes"),
    "partWorkers": _Option("PartWorkers", int, 10, 1, 64),
    "retries": _Option("Retries", int, 3, 0, 20),
    "connectTimeout": _Option("ConnectTimeout", float, 10.0, 0.1, 600.0, "seconds"),
    "readTimeout": _Option("ReadTimeout", float, 120.0, 0.1, 3600.0, "seconds"),
}


@dataclass(frozen=True)
class TransferSettings:
    """Thresholds, part size, workers, retries and timeouts of one SE (defaults: ``OPTIONS``).

    ``multipartThreshold``: files above it go in parts (at most 5 GiB: S3 refuses
    larger single PUTs). ``partSize``: the wished part size, grown by
    ``Parts.adjustPartSize`` when a file would need more than 10,000 parts.
    ``partWorkers``: parts of one file moved at once.
    """

    multipartThreshold: int = int(OPTIONS["multipartThreshold"].default)
    partSize: int = int(OPTIONS["partSize"].default)
    partWorkers: int = int(OPTIONS["partWorkers"].default)
    retries: int = int(OPTIONS["retries"].default)
    connectTimeout: float = OPTIONS["connectTimeout"].default
    readTimeout: float = OPTIONS["readTimeout"].default


def _describe(value: float, unit: str) -> str:
    if unit == "bytes" and value >= MiB:
        for size, name in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB")):
            if value >= size and value % size == 0:
                return f"{int(value // size)} {name} ({int(value)} bytes)"
    return f"{value:g} {unit}".strip()


def parseTransferSettings(options: dict) -> tuple[TransferSettings | None, str]:
    """(TransferSettings, "") from a protocol section's options, or (None, reason naming the option)."""
    values: dict[str, Any] = {}
    for attribute, option in OPTIONS.items():
        raw = options.get(option.name, "")
        if raw in ("", None):
            values[attribute] = option.kind(option.default)
            continue
        wanted = (
            f"must be a {'whole ' if option.kind is int else ''}number between "
            f"{_describe(option.minimum, option.unit)} and {_describe(option.maximum, option.unit)}"
        )
        try:
            value = option.kind(str(raw).strip())
        except ValueError:
            return None, f"option {option.name} {wanted}, not {raw!r}"
        if not option.minimum <= value <= option.maximum:
            return None, f"option {option.name} {wanted}, not {raw!r}"
        values[attribute] = value
    return TransferSettings(**values), ""

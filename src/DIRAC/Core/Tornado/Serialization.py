"""JSON on the wire, for both ends of the RPC, in two dialects.

Plain JSON carries dicts, lists, strings, numbers, booleans and None. A few
Python types that services commonly return are tagged so they survive the trip;
tuples and sets travel as lists. Two dialects differ only in their tags:

* ``JSON`` (ours): ``{"__rpcType": "bytes"|"datetime"|"date", "value": ...}``,
  bytes in base64, dates in ISO 8601 (microseconds and time zones kept).
* ``DIRAC9`` (DIRAC 9's ``JEncode``): ``{"__dCls": "b64"|"dt"|"date", "obj": ...}``,
  datetimes as ``"%Y-%m-%d %H:%M:%S"`` in UTC without a zone (DIRAC drops the
  microseconds), dates as ``"%Y-%m-%d"``. DIRAC also sends objects of its
  ``JSerializable`` classes, which it rebuilds by importing the module the sender
  names; we never import on the word of a peer: such a value is refused.

Decoding enforces limits so that a malformed or hostile body is refused with a
reason instead of exhausting the stack or reaching a handler: nesting at most
``MAX_DEPTH`` levels, integers within signed 64 bits (what every database column
and S3 size holds).
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSON = "json"
DIRAC9 = "dirac9"
DIALECTS = (JSON, DIRAC9)
TAG = "__rpcType"
DIRAC_TAG = "__dCls"
DIRAC_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DIRAC_DATE_FORMAT = "%Y-%m-%d"
MAX_DEPTH = 64
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1


def _utcNaive(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class _Dialect:
    """The tag names and text formats of one dialect."""

    tagKey: str
    valueKey: str
    names: dict[str, str]  # bytes/datetime/date -> the tag's value
    writeDatetime: Callable[[datetime.datetime], str]
    readDatetime: Callable[[str], datetime.datetime]
    readDate: Callable[[str], datetime.date]
    strict: bool  # refuse tagged values of unknown kinds (instead of passing the dict through)


_DIALECTS = {
    JSON: _Dialect(
        tagKey=TAG,
        valueKey="value",
        names={"bytes": "bytes", "datetime": "datetime", "date": "date"},
        writeDatetime=datetime.datetime.isoformat,
        readDatetime=datetime.datetime.fromisoformat,
        readDate=datetime.date.fromisoformat,
        strict=False,
    ),
    DIRAC9: _Dialect(
        tagKey=DIRAC_TAG,
        valueKey="obj",
        names={"bytes": "b64", "datetime": "dt", "date": "date"},
        writeDatetime=lambda value: _utcNaive(value).strftime(DIRAC_DATETIME_FORMAT),
        readDatetime=lambda text: datetime.datetime.strptime(text, DIRAC_DATETIME_FORMAT),
        readDate=lambda text: datetime.datetime.strptime(text, DIRAC_DATE_FORMAT).date(),
        strict=True,
    ),
}


def _dialect(name: str) -> _Dialect:
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown wire dialect {name!r}, expected one of {', '.join(DIALECTS)}") from None


def _encoderDefault(dialect: _Dialect) -> Callable[[Any], Any]:
    def default(obj: Any) -> Any:
        if isinstance(obj, (bytes, bytearray)):
            encoded = base64.b64encode(bytes(obj)).decode("ascii")
            return {dialect.tagKey: dialect.names["bytes"], dialect.valueKey: encoded}
        if isinstance(obj, datetime.datetime):
            return {dialect.tagKey: dialect.names["datetime"], dialect.valueKey: dialect.writeDatetime(obj)}
        if isinstance(obj, datetime.date):
            return {dialect.tagKey: dialect.names["date"], dialect.valueKey: obj.isoformat()}
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=repr)
        raise TypeError(f"cannot send a {type(obj).__name__} over RPC")

    return default


def _objectHook(dialect: _Dialect) -> Callable[[dict], Any]:
    readers = {
        dialect.names["bytes"]: lambda text: base64.b64decode(text, validate=True),
        dialect.names["datetime"]: dialect.readDatetime,
        dialect.names["date"]: dialect.readDate,
    }

    def hook(obj: dict) -> Any:
        kind = obj.get(dialect.tagKey)
        if kind is None:
            return obj
        reader = readers.get(kind) if isinstance(kind, str) else None
        if reader is None or dialect.valueKey not in obj or len(obj) != 2:
            if dialect.strict:
                raise ValueError(f"cannot receive a value tagged {dialect.tagKey}={kind!r}")
            return obj
        text = obj[dialect.valueKey]
        if not isinstance(text, str):
            raise ValueError(f"a {kind} value must be a string, got {type(text).__name__}")
        return reader(text)

    return hook


def _refuseConstant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def checkLimits(value: Any) -> None:
    """Raise ValueError when ``value`` nests deeper than ``MAX_DEPTH`` or holds an integer outside 64 bits."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple, int)))
        elif isinstance(item, int) and not isinstance(item, bool) and not MIN_INT <= item <= MAX_INT:
            raise ValueError(f"integer {str(item)[:30]} is outside the 64-bit range")


def encode(obj: Any, dialect: str = JSON) -> bytes:
    """JSON bytes for ``obj`` in ``dialect``; raises TypeError/ValueError for what JSON cannot carry."""
    text = json.dumps(obj, default=_encoderDefault(_dialect(dialect)), separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def decode(data: bytes | str, dialect: str = JSON) -> Any:
    """The Python value of JSON ``data`` in ``dialect``.

    Raises ValueError (UnicodeDecodeError included) when it is not valid JSON of that
    dialect or breaks the limits (see ``checkLimits``).
    """
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8")
    try:
        value = json.loads(data, object_hook=_objectHook(_dialect(dialect)), parse_constant=_refuseConstant)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    except (TypeError, base64.binascii.Error) as exc:
        raise ValueError(str(exc)) from None
    checkLimits(value)
    return value

"""JSON on the wire, for both ends of the RPC.

Plain JSON carries dicts, lists, strings, numbers, booleans and None. A few
Python types that services commonly return are tagged so they survive the trip:
``bytes`` (base64) and ``datetime``/``date`` (ISO 8601). Tuples and sets travel
as lists.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

TAG = "__rpcType"


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray)):
        return {TAG: "bytes", "value": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, datetime.datetime):
        return {TAG: "datetime", "value": obj.isoformat()}
    if isinstance(obj, datetime.date):
        return {TAG: "date", "value": obj.isoformat()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"cannot send a {type(obj).__name__} over RPC")


def _objectHook(obj: dict) -> Any:
    kind = obj.get(TAG)
    if kind is None or len(obj) != 2 or "value" not in obj:
        return obj
    value = obj["value"]
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "datetime":
        return datetime.datetime.fromisoformat(value)
    if kind == "date":
        return datetime.date.fromisoformat(value)
    return obj


def encode(obj: Any) -> bytes:
    """JSON bytes for ``obj``; raises TypeError/ValueError for what JSON cannot carry."""
    return json.dumps(obj, default=_default, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode(data: bytes | str) -> Any:
    """The Python value of JSON ``data``; raises ValueError when it is not valid JSON."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8")
    return json.loads(data, object_hook=_objectHook)

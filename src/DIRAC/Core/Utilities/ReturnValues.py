"""DIRAC's result convention: every public call returns a dict, never raises.

``S_OK(value)`` is ``{'OK': True, 'Value': value}``; ``S_ERROR`` carries a human
message and, when known, an ``Errno`` so callers can test the cause with
``DErrno.cmpError`` instead of parsing text.
"""

from __future__ import annotations

import functools
from typing import Any

from DIRAC.Core.Utilities import DErrno


def S_OK(value: Any = None) -> dict:
    """A successful result holding ``value``."""
    return {"OK": True, "Value": value}


def S_ERROR(*args: Any, **kwargs: Any) -> dict:
    """A failed result.

    Accepted forms, as in DIRAC: ``S_ERROR("message")``,
    ``S_ERROR(errno)``, ``S_ERROR(errno, "detail")`` and the keywords
    ``errno=`` / ``errMsg=``.
    """
    errno = kwargs.get("errno", 0)
    message = kwargs.get("errMsg", "")
    if args:
        if isinstance(args[0], int) and not isinstance(args[0], bool):
            errno = args[0]
            message = str(args[1]) if len(args) > 1 else ""
        else:
            message = str(args[0])
    if errno:
        text = DErrno.strerror(errno)
        message = f"{text} ( {errno} : {message})" if message else text
    return {"OK": False, "Message": message, "Errno": errno}


def isReturnStructure(value: Any) -> bool:
    """True when ``value`` looks like an S_OK/S_ERROR dict."""
    if not isinstance(value, dict) or "OK" not in value:
        return False
    return "Value" in value if value["OK"] else "Message" in value


def returnSingleResult(result: dict) -> dict:
    """Reduce a bulk ``{'Successful', 'Failed'}`` result for one item to S_OK / S_ERROR."""
    if not result.get("OK"):
        return result
    value = result.get("Value")
    if not isinstance(value, dict) or "Successful" not in value:
        return result
    if value.get("Failed"):
        failure = next(iter(value["Failed"].values()))
        if isReturnStructure(failure):
            return failure
        return S_ERROR(str(failure))
    if value.get("Successful"):
        return S_OK(next(iter(value["Successful"].values())))
    return S_ERROR(DErrno.EVALUE, "no item in the bulk result")


class SErrorException(Exception):
    """Raised by ``returnValueOrRaise``; carries the S_ERROR it came from."""

    def __init__(self, result: dict | str, errCode: int = 0):
        if not isinstance(result, dict):
            result = S_ERROR(errCode, str(result)) if errCode else S_ERROR(str(result))
        self.result = result
        super().__init__(result["Message"])


def returnValueOrRaise(result: dict) -> Any:
    """The value of an S_OK, or ``SErrorException`` for an S_ERROR."""
    if not result["OK"]:
        raise SErrorException(result)
    return result["Value"]


def convertToReturnValue(func):
    """Decorate a function that returns a value or raises into one returning S_OK / S_ERROR."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return S_OK(func(*args, **kwargs))
        except SErrorException as exc:
            return exc.result
        except Exception as exc:  # noqa: BLE001 - the decorator's job is to turn errors into values
            return S_ERROR(DErrno.EEEXCEPTION, repr(exc))

    return wrapper

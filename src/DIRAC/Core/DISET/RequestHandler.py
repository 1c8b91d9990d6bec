"""``RequestHandler``: the base class of every service handler.

A service ``<System>/<Service>`` is served by a class ``<Service>Handler`` that
subclasses ``RequestHandler``:

* ``initializeHandler(serviceInfo)`` (class method) runs once per process, before
  the first call; an S_ERROR stops the service from starting.
* ``export_<method>(self, *args)`` are the callable methods; they return S_OK/S_ERROR.
* ``types_<method> = [str, (list, dict), ...]`` lists the expected type of each
  leading argument; a call whose arguments do not match is refused before the
  method runs.
* ``auth_<method> = ["authenticated"]`` is the handler's own default authorization,
  used when the configuration does not say (see ``AuthManager``).

One handler object is made per call; it knows the caller through
``getRemoteCredentials()`` and its configuration through ``srv_getCSOption``.
"""

from __future__ import annotations

import functools
import inspect
import os
import socket
import time
from typing import Any

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

EXPORT_PREFIX = "export_"
TYPES_PREFIX = "types_"
AUTH_PREFIX = "auth_"


class RequestHandler:
    """Base class of service handlers; see the module documentation."""

    types_ping: list = []
    auth_ping = ["all"]
    types_whoami: list = []
    auth_whoami = ["authenticated"]

    def __init__(self, serviceInfo: dict, credentials: dict, remoteAddress: str = "") -> None:
        self.serviceInfo = serviceInfo
        self._credentials = dict(credentials)
        self._remoteAddress = remoteAddress

    @classmethod
    def initializeHandler(cls, serviceInfo: dict) -> dict:
        """Prepare class-level state once per process (DB connections, configuration, ...)."""
        return S_OK()

    # What a handler knows about the call and its service

    def getRemoteCredentials(self) -> dict:
        """The caller: ``DN``, ``username``, ``group``, ``properties``, ``isProxy`` (a copy)."""
        return dict(self._credentials)

    def getRemoteAddress(self) -> str:
        """The caller's IP address."""
        return self._remoteAddress

    srv_getRemoteAddress = getRemoteAddress
    srv_getRemoteCredentials = getRemoteCredentials

    def srv_getServiceName(self) -> str:
        """``System/Service``."""
        return self.serviceInfo["serviceName"]

    def srv_getURL(self) -> str:
        """The URL the service answers at."""
        return self.serviceInfo.get("URL", "")

    def srv_getCSOption(self, optionName: str, defaultValue: Any = None) -> Any:
        """``/Systems/<System>/Services/<Service>/<optionName>``, typed like ``defaultValue``."""
        return getServiceOption(self.serviceInfo, optionName, defaultValue)

    # Built-in methods every service has

    def export_ping(self) -> dict:
        """Whether the service answers, with a little about the server."""
        return S_OK(
            {
                "name": self.serviceInfo["serviceName"],
                "host": socket.getfqdn(),
                "pid": os.getpid(),
                "time": time.time(),
                "startTime": self.serviceInfo.get("startTime"),
                "version": _version(),
            }
        )

    def export_whoami(self) -> dict:
        """The caller's credentials as the service sees them."""
        return S_OK(self.getRemoteCredentials())


def _version() -> str:
    import DIRAC

    return getattr(DIRAC, "version", "")


def getServiceOption(serviceInfo: dict, optionName: str, defaultValue: Any = None) -> Any:
    """An option of the service's configuration section, typed like ``defaultValue``."""
    return gConfig.getValue(f"{serviceInfo['serviceSectionPath']}/{optionName}", defaultValue)


def exportedMethods(handlerClass: type) -> list[str]:
    """The method names a handler class exports (without the ``export_`` prefix)."""
    return sorted(
        name[len(EXPORT_PREFIX) :]
        for name in dir(handlerClass)
        if name.startswith(EXPORT_PREFIX) and callable(getattr(handlerClass, name))
    )


def _typeName(expected: Any) -> str:
    if isinstance(expected, (list, tuple)):
        return " or ".join(_typeName(item) for item in expected)
    return getattr(expected, "__name__", str(expected))


def _coerce(value: Any, expected: Any) -> tuple[bool, Any]:
    """Whether ``value`` matches ``expected`` (a type or a tuple/list of types), and the value to pass.

    JSON has no tuples and does not tell 1.0 from 1: a list is accepted where a tuple
    is expected (and converted), an int where a float is expected. A boolean is only
    accepted where ``bool`` is expected (not as an int).
    """
    types = tuple(expected) if isinstance(expected, (list, tuple)) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False, value  # JSON true/false is not a number, even though Python's bool is an int
    if isinstance(value, types):
        return True, value
    if isinstance(value, list) and tuple in types:
        return True, tuple(value)
    if isinstance(value, int) and not isinstance(value, bool) and float in types:
        return True, float(value)
    return False, value


@functools.lru_cache(maxsize=1024)
def _signature(handlerClass: type, method: str) -> inspect.Signature:
    return inspect.signature(getattr(handlerClass, EXPORT_PREFIX + method))


def checkArguments(handlerClass: type, method: str, args: list) -> dict:
    """S_OK(arguments to pass) when ``args`` fit ``types_<method>`` and the method's signature.

    S_ERROR names the argument (1-based position) and the expected type, or the
    expected number of arguments.
    """
    expectedTypes = getattr(handlerClass, TYPES_PREFIX + method, None)
    checked = list(args)
    if expectedTypes is not None:
        if len(args) < len(expectedTypes):
            return S_ERROR(
                DErrno.ETYPE,
                f"{method}: missing arguments, expected at least {len(expectedTypes)} "
                f"({', '.join(_typeName(t) for t in expectedTypes)}), got {len(args)}",
            )
        for index, expected in enumerate(expectedTypes):
            ok, value = _coerce(args[index], expected)
            if not ok:
                return S_ERROR(
                    DErrno.ETYPE,
                    f"{method}: argument {index + 1} should be {_typeName(expected)}, got {type(args[index]).__name__}",
                )
            checked[index] = value
    try:
        signature = _signature(handlerClass, method)
        # The signature of the unbound function includes ``self``.
        signature.bind(None, *checked)
    except TypeError as exc:
        return S_ERROR(DErrno.ETYPE, f"{method}: wrong arguments: {exc}")
    except ValueError:
        pass  # no introspectable signature: let the call decide
    return S_OK(checked)

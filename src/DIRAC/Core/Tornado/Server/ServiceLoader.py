"""Find and prepare the handler class of a ``System/Service``.

The handler of ``<System>/<Service>`` is the class ``<Service>Handler`` in the module
``DIRAC.<System>System.Service.<Service>Handler``. The service's configuration
section ``/Systems/<System>/Services/<Service>`` may change that:

* ``Module = <OtherService>`` or ``<OtherSystem>/<OtherService>``: run that handler
  under this service's name (one handler, several configured instances);
* ``HandlerPath = package/module.py`` or ``package.module`` (optionally
  ``package.module:ClassName``): load the handler from that module.
"""

from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass, field

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.DISET.AuthManager import AuthManager
from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

DEFAULT_MAX_REQUEST_SIZE = 16 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass
class ServiceEntry:
    """A loaded service: its names, handler class, authorization and limits."""

    name: str
    system: str
    service: str
    sectionPath: str
    handlerClass: type
    serviceInfo: dict = field(default_factory=dict)
    authManager: AuthManager | None = None
    maxRequestSize: int = DEFAULT_MAX_REQUEST_SIZE


def splitServiceName(serviceName: str) -> dict:
    """S_OK((system, service)) for ``System/Service``, S_ERROR naming the problem otherwise."""
    parts = str(serviceName).strip().strip("/").split("/")
    if len(parts) != 2 or not all(_NAME.match(part) for part in parts):
        return S_ERROR(DErrno.EVALUE, f"{serviceName!r} is not a service name of the form System/Service")
    return S_OK((parts[0], parts[1]))


def serviceSectionPath(system: str, service: str) -> str:
    """``/Systems/<System>/Services/<Service>``."""
    return f"/Systems/{system}/Services/{service}"


def systemPackage(system: str) -> str:
    """``Configuration`` -> ``DIRAC.ConfigurationSystem``."""
    return f"DIRAC.{system}System"


def _importClass(moduleName: str, className: str) -> dict:
    try:
        module = importlib.import_module(moduleName)
    except ImportError as exc:
        return S_ERROR(DErrno.EIMPERR, f"cannot import handler module {moduleName}: {exc}")
    handlerClass = getattr(module, className, None)
    if handlerClass is None:
        return S_ERROR(DErrno.EIMPERR, f"module {moduleName} has no class {className}")
    if not isinstance(handlerClass, type) or not issubclass(handlerClass, RequestHandler):
        return S_ERROR(DErrno.EIMPERR, f"{moduleName}.{className} is not a RequestHandler subclass")
    return S_OK(handlerClass)


def findHandlerClass(system: str, service: str) -> dict:
    """S_OK(handler class) for the service, following ``Module`` and ``HandlerPath``."""
    section = serviceSectionPath(system, service)
    module = gConfig.getValue(f"{section}/Module", "").strip()
    if module:
        if "/" in module:
            split = splitServiceName(module)
            if not split["OK"]:
                return S_ERROR(DErrno.ECONF, f"{section}/Module: {split['Message']}")
            system, service = split["Value"]
        else:
            service = module
    handlerPath = gConfig.getValue(f"{section}/HandlerPath", "").strip()
    className = f"{service}Handler"
    if handlerPath:
        moduleName = handlerPath
        if ":" in moduleName:
            moduleName, className = moduleName.split(":", 1)
        if moduleName.endswith(".py"):
            moduleName = moduleName[: -len(".py")].replace("/", ".")
        return _importClass(moduleName, className)
    return _importClass(f"{systemPackage(system)}.Service.{service}Handler", className)


def loadService(serviceName: str, handlerClass: type | None = None, url: str = "", port: int = 0) -> dict:
    """S_OK(ServiceEntry) ready to answer calls: handler found and ``initializeHandler`` done."""
    split = splitServiceName(serviceName)
    if not split["OK"]:
        return split
    system, service = split["Value"]
    if handlerClass is None:
        found = findHandlerClass(system, service)
        if not found["OK"]:
            return S_ERROR(f"unknown service {serviceName}: {found['Message']}")
        handlerClass = found["Value"]
    section = serviceSectionPath(system, service)
    maxSize = gConfig.getValue(f"{section}/MaxRequestSize", DEFAULT_MAX_REQUEST_SIZE)
    if not isinstance(maxSize, int) or maxSize <= 0:
        return S_ERROR(DErrno.ECONF, f"{section}/MaxRequestSize must be a positive number of bytes")
    serviceInfo = {
        "serviceName": f"{system}/{service}",
        "system": system,
        "service": service,
        "serviceSectionPath": section,
        "csPaths": [section],
        "URL": url,
        "port": port,
        "startTime": time.time(),
        "handlerClass": f"{handlerClass.__module__}.{handlerClass.__qualname__}",
    }
    try:
        result = handlerClass.initializeHandler(serviceInfo)
    except Exception as exc:  # noqa: BLE001 - a broken handler must give a message, not a traceback to the caller
        return S_ERROR(DErrno.EEEXCEPTION, f"{serviceName}: initializeHandler raised {exc!r}")
    if not isinstance(result, dict) or not result.get("OK", False):
        message = result.get("Message", "no message") if isinstance(result, dict) else repr(result)
        return S_ERROR(f"{serviceName}: initializeHandler failed: {message}")
    return S_OK(
        ServiceEntry(
            name=f"{system}/{service}",
            system=system,
            service=service,
            sectionPath=section,
            handlerClass=handlerClass,
            serviceInfo=serviceInfo,
            authManager=AuthManager(f"{section}/Authorization", handlerClass),
            maxRequestSize=maxSize,
        )
    )

"""What can be installed and with which options: names, ``ConfigTemplate.cfg`` sections, handlers.

A service ``<System>/<Service>`` can be installed when the system's ``ConfigTemplate.cfg``
has a section ``Services/<Service>`` (its defaults) and the module
``DIRAC.<System>System.Service.<Service>Handler`` exists. Options given by an administrator
become a CFG; names that look like secrets are refused (secrets stay in local files).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from diraccfg import CFG

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

COMPONENT_TYPES = ("service",)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*(/[A-Za-z][A-Za-z0-9_.-]*)*$")
_SECRET = re.compile(r"(?i)(secret|passw|access_key|token|private|credential)")


def checkName(kind: str, name: str) -> dict:
    """S_OK(name) for a system/component name (letters, digits, _), S_ERROR otherwise."""
    if isinstance(name, str) and NAME.match(name):
        return S_OK(name)
    return S_ERROR(DErrno.EVALUE, f"invalid {kind} name {name!r}: letters, digits and _ only, starting with a letter")


def checkType(componentType: str) -> dict:
    """S_OK(normalised type) for a supported component type."""
    kind = str(componentType).strip().lower()
    if kind in COMPONENT_TYPES:
        return S_OK(kind)
    return S_ERROR(
        DErrno.EVALUE, f"component type {componentType!r} is not supported (only: {', '.join(COMPONENT_TYPES)})"
    )


def getSystemTemplate(system: str) -> dict:
    """S_OK(CFG of ``DIRAC/<System>System/ConfigTemplate.cfg``), S_ERROR when the system or file is missing."""
    package = f"DIRAC.{system}System"
    try:
        if importlib.util.find_spec(package) is None:
            return S_ERROR(DErrno.ENOENT, f"unknown system {system}: there is no package {package}")
        resource = importlib.resources.files(package).joinpath("ConfigTemplate.cfg")
        text = resource.read_text(encoding="utf-8")
    except (ImportError, FileNotFoundError, NotADirectoryError, TypeError):
        return S_ERROR(DErrno.ENOENT, f"system {system} has no ConfigTemplate.cfg")
    except (OSError, UnicodeDecodeError) as exc:
        return S_ERROR(DErrno.EIO, f"cannot read the ConfigTemplate.cfg of {system}: {exc}")
    try:
        return S_OK(CFG().loadFromBuffer(text))
    except Exception as exc:  # noqa: BLE001 - diraccfg raises plain exceptions on syntax errors
        return S_ERROR(DErrno.ECONF, f"the ConfigTemplate.cfg of {system} does not parse: {exc}")


def checkService(system: str, service: str, module: str = "") -> dict:
    """S_OK(template section CFG) when ``system``/``service`` (run by handler ``module``) can be installed."""
    for kind, name in (("system", system), ("service", service), ("module", module or service)):
        checked = checkName(kind, name)
        if not checked["OK"]:
            return checked
    module = module or service
    template = getSystemTemplate(system)
    if not template["OK"]:
        return template
    services = template["Value"].getAsCFG("Services")
    if not services.isSection(module):
        known = ", ".join(services.listSections()) or "none"
        return S_ERROR(
            DErrno.ENOENT,
            f"unknown service {system}/{module}: no section Services/{module} in the ConfigTemplate.cfg "
            f"of {system} (its services: {known})",
        )
    handler = f"DIRAC.{system}System.Service.{module}Handler"
    try:
        found = importlib.util.find_spec(handler)
    except ImportError:
        found = None
    if found is None:
        return S_ERROR(DErrno.ENOENT, f"unknown service {system}/{module}: no handler module {handler}")
    return S_OK(services.getAsCFG(module))


def optionsToCFG(options: dict | None) -> dict:
    """S_OK(CFG) of ``{"Option" or "Sub/Option": value}``; S_ERROR for bad names, values or secrets."""
    cfg = CFG()
    for name, value in (options or {}).items():
        if not isinstance(name, str) or not _OPTION.match(name):
            return S_ERROR(DErrno.EVALUE, f"invalid option name {name!r}")
        if _SECRET.search(name):
            return S_ERROR(
                DErrno.EVALUE,
                f"option {name} looks like a secret: secrets go only in the local dirac.cfg of the hosts "
                "that need them, never in the central configuration",
            )
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(item) for item in value)
        text = str(value)
        if any(char in text for char in "\n\r{}"):
            return S_ERROR(DErrno.EVALUE, f"option {name}: the value may not contain newlines or braces")
        *sections, option = name.split("/")
        node = cfg
        for section in sections:
            if node.isOption(section):
                return S_ERROR(DErrno.EVALUE, f"option {name}: {section} is already an option")
            if not node.isSection(section):
                node.createNewSection(section)
            node = node[section]
        if node.isSection(option):
            return S_ERROR(DErrno.EVALUE, f"option {name} is also used as a section")
        node.setOption(option, text.strip())
    return S_OK(cfg)


def walkOptions(cfg: CFG, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (path, value) of a CFG, depth first."""
    for option in cfg.listOptions():
        yield f"{prefix}{option}", str(cfg[option])
    for section in cfg.listSections():
        yield from walkOptions(cfg[section], f"{prefix}{section}/")


def urlList(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item).strip() for item in value if str(item).strip()]
    return [item.strip() for item in str(value or "").split(",") if item.strip()]


def portOf(url: str) -> tuple[str, int]:
    try:
        parsed = urlparse(url)
        return (parsed.hostname or "", parsed.port or 0)
    except ValueError:
        return ("", 0)


def portIsFree(address: str, port: int) -> bool:
    """True when nothing listens on ``address:port`` (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address or "0.0.0.0", port))
        except OSError:
            return False
    return True

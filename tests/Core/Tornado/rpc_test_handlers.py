"""Handlers used only by the RPC tests (loaded by dirac-service through the HandlerPath option)."""

from __future__ import annotations

import os
import time

from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK


class RPCTestHandler(RequestHandler):
    """Service Framework/RPCTest."""

    greeting = ""

    @classmethod
    def initializeHandler(cls, serviceInfo: dict) -> dict:
        cls.greeting = f"initialized {serviceInfo['serviceName']} in {os.getpid()}"
        return S_OK()

    types_echo: list = []

    def export_echo(self, value):
        return S_OK(value)

    types_add = [int, int]

    def export_add(self, first, second):
        return S_OK(first + second)

    types_describe = [str, (list, tuple), dict]

    def export_describe(self, name, items, options):
        return S_OK({"name": name, "items": list(items), "options": options, "itemsType": type(items).__name__})

    def export_boom(self):
        raise RuntimeError("secret internal detail")

    def export_badReturn(self):
        return 42

    types_sleep = [(int, float)]

    def export_sleep(self, seconds):
        time.sleep(min(float(seconds), 5))
        return S_OK(os.getpid())

    auth_adminOnly = ["CSAdministrator"]

    def export_adminOnly(self):
        return S_OK("admin")

    def export_configured(self):
        """Authorization comes only from the configuration in the tests."""
        return S_OK("configured")

    def export_info(self):
        return S_OK({"greeting": self.greeting, "option": self.srv_getCSOption("Greeting", "none")})

    def export_failing(self):
        return S_ERROR("a plain failure")

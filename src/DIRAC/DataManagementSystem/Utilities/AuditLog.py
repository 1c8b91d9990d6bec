"""Audit records of the S3 gateway's decisions: JSON lines in a file, optionally a webhook.

One record per URL decision. The file write is synchronous (the record of a
granted URL exists before the URL is handed out); the webhook is best effort:
records go through a bounded queue to one background sender with a short
timeout, and are dropped (with a log line) rather than slow down a request.
The file is the gateway's alone: created 0600 (an older, looser file is
tightened to 0600) in a folder nobody else may write to (``PrivateFile``).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from typing import Any

import requests

from DIRAC.Core.Utilities.PrivateFile import PRIVATE_MODE, securePrivateFile
from DIRAC.Core.Utilities.ReturnValues import S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger

WEBHOOK_QUEUE = 10000
WEBHOOK_TIMEOUT = 2.0

log = gLogger.getSubLogger("AuditLog")


class AuditLog:
    """Appends decision records to ``path`` (if any) and posts them to ``webhook`` (if any)."""

    def __init__(self, path: str = "", webhook: str = ""):
        self.path = path
        self.webhook = webhook
        self._lock = threading.Lock()
        self._secured = securePrivateFile(path, "audit file") if path else S_OK()
        self._queue: queue.Queue | None = None
        if webhook:
            self._queue = queue.Queue(maxsize=WEBHOOK_QUEUE)
            threading.Thread(target=self._sendLoop, name="audit-webhook", daemon=True).start()

    def check(self) -> dict:
        """S_OK when the audit file is usable, S_ERROR saying why not (a service must not start then)."""
        return self._secured

    def record(self, entries: list[dict[str, Any]]) -> None:
        """Write ``entries`` (each gets a UTC ``time``) to the file and queue them for the webhook."""
        if not entries:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [json.dumps({"time": stamp, **entry}, sort_keys=True) for entry in entries]
        if self.path:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
            with self._lock, open(os.open(self.path, flags, PRIVATE_MODE), "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        if self._queue is not None:
            try:
                self._queue.put_nowait(lines)
            except queue.Full:
                log.warn("Audit webhook queue full, records dropped:", len(lines))

    def _sendLoop(self) -> None:
        session = requests.Session()
        while True:
            lines = self._queue.get()
            try:
                session.post(
                    self.webhook,
                    data="\n".join(lines).encode(),
                    headers={"Content-Type": "application/x-ndjson"},
                    timeout=WEBHOOK_TIMEOUT,
                )
            except requests.RequestException as exc:
                log.warn("Audit webhook not reached:", f"{self.webhook}: {type(exc).__name__}")

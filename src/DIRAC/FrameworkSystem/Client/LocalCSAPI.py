"""``LocalCSAPI``: ``CSAPI`` editing the central configuration file directly, on the server's own host.

The configuration server cannot commit to itself before it runs: the site bootstrap
(``dirac-setup-site``) writes the seed entries with this class. It goes through the same
``CentralStore`` as the server (file lock, version check, atomic write, history), so it is
safe while the server runs too; the server notices the new file on its next read.
"""

from __future__ import annotations

from DIRAC.ConfigurationSystem.Client.CSAPI import CSAPI
from DIRAC.ConfigurationSystem.Service.CentralStore import CentralStore
from DIRAC.Core.Utilities.ReturnValues import S_OK


class LocalCSAPI(CSAPI):
    """The ``CSAPI`` editing methods over a local central file instead of the configuration server."""

    def __init__(self, path: str, author: str = "dirac-setup-site") -> None:
        super().__init__()
        self._store = CentralStore(path)
        self._author = author

    def _fetch(self) -> dict:
        """S_OK((text, version)) of the current central file."""
        current = self._store.current()
        if not current["OK"]:
            return current
        return S_OK((current["Value"]["text"], current["Value"]["version"]))

    def _send(self, text: str, version: str) -> dict:
        """Write ``text`` as the change of ``version`` (refused when the file changed since); S_OK(new version)."""
        return self._store.commit(text, version, self._author)

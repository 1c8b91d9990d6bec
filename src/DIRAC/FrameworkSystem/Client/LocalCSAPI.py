"""``LocalCSAPI``: ``CSAPI`` editing the central configuration file directly, on the server's own host.

The configuration server cannot commit to itself before it runs: the site bootstrap
(``dirac-setup-site``) writes the seed entries with this class. It goes through the same
``CentralStore`` as the server (file lock, version check, atomic write, history), so it is
safe while the server runs too; the server notices the new file on its next read.
"""

from __future__ import annotations

from DIRAC.ConfigurationSystem.Client.CSAPI import CSAPI
from DIRAC.ConfigurationSystem.Service.CentralStore import CentralStore, parseCFG
from DIRAC.Core.Utilities.ReturnValues import S_OK


class LocalCSAPI(CSAPI):
    """The ``CSAPI`` editing methods over a local central file instead of the configuration server."""

    def __init__(self, path: str, author: str = "dirac-setup-site") -> None:
        super().__init__()
        self._store = CentralStore(path)
        self._author = author

    def downloadCSData(self) -> dict:
        """Read the current file, dropping unsaved changes; S_OK(version)."""
        current = self._store.current()
        if not current["OK"]:
            return current
        parsed = parseCFG(current["Value"]["text"])
        if not parsed["OK"]:
            return parsed
        self._cfg = parsed["Value"]
        self._version = current["Value"]["version"]
        self._changed = False
        return S_OK(self._version)

    initialize = downloadCSData

    def commit(self) -> dict:
        """Write the changes (refused when the file changed since it was read); S_OK(new version)."""
        if self._cfg is None or not self._changed:
            return S_OK(self._version)
        result = self._store.commit(str(self._cfg), self._version, self._author)
        if not result["OK"]:
            return result
        self._version = result["Value"]
        self._changed = False
        self._cfg = None
        return result

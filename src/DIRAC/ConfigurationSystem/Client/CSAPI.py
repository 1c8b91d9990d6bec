"""``CSAPI``: change the central configuration through the configuration server.

::

    csAPI = CSAPI()
    csAPI.createSection("/Systems/DataManagement/Services/S3Gateway")
    csAPI.setOption("/Systems/DataManagement/Services/S3Gateway/Port", 9160)
    result = csAPI.commit()        # S_OK(new version) or S_ERROR (e.g. somebody committed meanwhile)

The first change downloads the current configuration and remembers its version;
``commit`` sends the changed text based on that version, so a concurrent change
made by somebody else is never overwritten silently: the commit is refused and
the changes must be reapplied on a fresh download. The caller needs the
``CSAdministrator`` property.
"""

from __future__ import annotations

from typing import Any

from diraccfg import CFG

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.CSServerLoader import SERVERS_OPTION
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK


def _parts(path: str) -> list[str]:
    return [part for part in str(path).split("/") if part]


def _asText(value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class CSAPI:
    """Edits of the central configuration, committed through ``Configuration/Server``."""

    def __init__(self, url: str | None = None, **rpcOptions: Any) -> None:
        """``url``: the configuration server(s) (default ``/DIRAC/Configuration/Servers``); other
        keywords (``useCertificates``, ``proxyLocation``, ``timeout``) go to the RPC client."""
        self._url = url
        self._rpcOptions = rpcOptions
        self._cfg: CFG | None = None
        self._version = ""
        self._changed = False

    def _rpc(self):
        from DIRAC.Core.DISET.RPCClient import RPCClient

        target = self._url or ",".join(gConfig.getValue(SERVERS_OPTION, [])) or "Configuration/Server"
        return RPCClient(target, **self._rpcOptions)

    def _fetch(self) -> dict:
        """S_OK((text, version)) of the current central configuration, from the server."""
        from DIRAC.ConfigurationSystem.Service.CentralStore import decompress

        data = self._rpc().getCompressedDataIfNewer("")
        if not data["OK"]:
            return data
        text = decompress(data["Value"].get("data", ""))
        if not text["OK"]:
            return text
        return S_OK((text["Value"], data["Value"]["newestVersion"]))

    def _send(self, text: str, version: str) -> dict:
        """Store ``text`` as the change of ``version``, through the server; S_OK(new version)."""
        return self._rpc().commitNewData(text, version)

    def downloadCSData(self) -> dict:
        """Fetch the current central configuration, dropping unsaved changes; S_OK(version)."""
        from DIRAC.ConfigurationSystem.Service.CentralStore import parseCFG

        fetched = self._fetch()
        if not fetched["OK"]:
            return fetched
        text, version = fetched["Value"]
        parsed = parseCFG(text)
        if not parsed["OK"]:
            return parsed
        self._cfg = parsed["Value"]
        self._version = version
        self._changed = False
        return S_OK(self._version)

    initialize = downloadCSData

    def _ensure(self) -> dict:
        return S_OK() if self._cfg is not None else self.downloadCSData()

    def getCurrentCFG(self) -> dict:
        """S_OK(CFG being edited, a copy)."""
        result = self._ensure()
        return result if not result["OK"] else S_OK(self._cfg.clone())

    @property
    def version(self) -> str:
        """The version the pending changes are based on."""
        return self._version

    def _section(self, parts: list[str], create: bool) -> dict:
        node = self._cfg
        for depth, name in enumerate(parts):
            if node.isOption(name):
                return S_ERROR(DErrno.EVALUE, f"/{'/'.join(parts[: depth + 1])} is an option, not a section")
            if not node.isSection(name):
                if not create:
                    return S_ERROR(DErrno.ESECTION, f"section /{'/'.join(parts[: depth + 1])} does not exist")
                node.createNewSection(name)
            node = node[name]
        return S_OK(node)

    def createSection(self, sectionPath: str, comment: str = "") -> dict:
        """Create a section and its missing parents; S_OK() also when it exists."""
        parts = _parts(sectionPath)
        if not parts:
            return S_ERROR(DErrno.EVALUE, "createSection needs a path")
        result = self._ensure()
        if not result["OK"]:
            return result
        result = self._section(parts, create=True)
        if result["OK"]:
            if comment:
                self._section(parts[:-1], create=False)["Value"].setComment(parts[-1], comment)
            self._changed = True
            return S_OK()
        return result

    def setOption(self, optionPath: str, optionValue: Any) -> dict:
        """Set an option (creating its sections); lists become comma lists."""
        parts = _parts(optionPath)
        if len(parts) < 1:
            return S_ERROR(DErrno.EVALUE, "setOption needs a path")
        result = self._ensure()
        if not result["OK"]:
            return result
        section = self._section(parts[:-1], create=True)
        if not section["OK"]:
            return section
        if section["Value"].isSection(parts[-1]):
            return S_ERROR(DErrno.EVALUE, f"{optionPath} is a section, not an option")
        section["Value"].setOption(parts[-1], _asText(optionValue))
        self._changed = True
        return S_OK()

    modifyValue = setOption

    def _delete(self, path: str, wantSection: bool) -> dict:
        parts = _parts(path)
        if not parts:
            return S_ERROR(DErrno.EVALUE, "a path is needed")
        result = self._ensure()
        if not result["OK"]:
            return result
        parent = self._section(parts[:-1], create=False)
        if not parent["OK"]:
            return parent
        node = parent["Value"]
        exists = node.isSection(parts[-1]) if wantSection else node.isOption(parts[-1])
        if not exists:
            kind = "section" if wantSection else "option"
            return S_ERROR(DErrno.ENOENT, f"{kind} {path} does not exist")
        node.deleteKey(parts[-1])
        self._changed = True
        return S_OK()

    def delSection(self, sectionPath: str) -> dict:
        """Delete a section and everything in it."""
        return self._delete(sectionPath, wantSection=True)

    def delOption(self, optionPath: str) -> dict:
        """Delete an option."""
        return self._delete(optionPath, wantSection=False)

    def commit(self) -> dict:
        """Send the changes; S_OK(new version), S_ERROR when refused (stale, not allowed, invalid)."""
        if self._cfg is None or not self._changed:
            return S_OK(self._version)
        result = self._send(str(self._cfg), self._version)
        if not result["OK"]:
            return result
        self._version = result["Value"]
        self._changed = False
        # The server stamped its copy; the next edit starts from a fresh download of it.
        self._cfg = None
        return result

    def commitChanges(self, sortUsers: bool = False) -> dict:
        """DIRAC's name for ``commit``."""
        return self.commit()

"""``Configuration/Server``: serves the central configuration with a version stamp.

The file served is ``/Systems/Configuration/Services/Server/CFGFile``, else the
server's ``/DIRAC/Configuration/CentralFile``. Clients name the server in
``/DIRAC/Configuration/Servers`` and load the configuration with
``getCompressedData`` / ``getCompressedDataIfNewer``; administrators (property
``CSAdministrator``) change it with ``commitNewData``, which is refused when based on
an older version than the current one.
"""

from __future__ import annotations

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Service.CentralStore import CentralStore
from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger

CENTRAL_FILE_OPTION = "/DIRAC/Configuration/CentralFile"
_log = gLogger.getSubLogger("ConfigurationServer")


class ServerHandler(RequestHandler):
    """Read and commit the central configuration."""

    store: CentralStore | None = None

    auth_getCompressedData = ["authenticated"]
    auth_getCompressedDataIfNewer = ["authenticated"]
    auth_getVersion = ["authenticated"]
    auth_getCommitHistory = ["authenticated"]
    auth_commitNewData = ["CSAdministrator"]

    @classmethod
    def initializeHandler(cls, serviceInfo: dict) -> dict:
        """Find the central file and check that it is readable and valid."""
        path = gConfig.getValue(f"{serviceInfo['serviceSectionPath']}/CFGFile", "") or gConfig.getValue(
            CENTRAL_FILE_OPTION, ""
        )
        if not path:
            return S_ERROR(
                DErrno.ECONF,
                f"no central configuration file: set {serviceInfo['serviceSectionPath']}/CFGFile "
                f"or {CENTRAL_FILE_OPTION}",
            )
        store = CentralStore(path)
        result = store.load()
        if not result["OK"]:
            return result
        cls.store = store
        _log.always("Serving the central configuration", f"{store.path} version {store.current()['Value']['version']}")
        return S_OK()

    types_getVersion: list = []

    def export_getVersion(self) -> dict:
        """S_OK(version string of the central configuration)."""
        current = self.store.current()
        return current if not current["OK"] else S_OK(current["Value"]["version"])

    types_getCompressedData: list = []

    def export_getCompressedData(self) -> dict:
        """S_OK(base64 of the zlib-compressed cfg text); the version is in it at /DIRAC/Configuration/Version."""
        current = self.store.current()
        return current if not current["OK"] else S_OK(current["Value"]["compressed"])

    types_getCompressedDataIfNewer = [str]

    def export_getCompressedDataIfNewer(self, clientVersion: str) -> dict:
        """S_OK({"newestVersion": v, "data": compressed cfg only when v differs from ``clientVersion``})."""
        current = self.store.current()
        if not current["OK"]:
            return current
        answer = {"newestVersion": current["Value"]["version"]}
        if clientVersion != answer["newestVersion"]:
            answer["data"] = current["Value"]["compressed"]
        return S_OK(answer)

    types_commitNewData = [str]

    def export_commitNewData(self, cfgText: str, baseVersion: str = "") -> dict:
        """Replace the central configuration; S_OK(new version), S_ERROR when stale or invalid.

        ``baseVersion`` is the version the change was made from (default: the
        /DIRAC/Configuration/Version inside ``cfgText``).
        """
        if not isinstance(baseVersion, str):
            return S_ERROR(DErrno.ETYPE, "commitNewData: baseVersion must be a string")
        credentials = self.getRemoteCredentials()
        author = f"{credentials.get('username')}@{credentials.get('group')}"
        result = self.store.commit(cfgText, baseVersion, author)
        if not result["OK"]:
            _log.warn("Commit refused", f"{author}: {result['Message']}")
            return result
        _log.always("New central configuration", f"version {result['Value']} by {author}")
        # This process reads its own configuration from the file too (Registry for the next calls).
        from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

        gConfigurationData.refreshCentral()
        return result

    types_getCommitHistory: list = []

    def export_getCommitHistory(self) -> dict:
        """S_OK(list of the previous versions kept on the server)."""
        return self.store.history()

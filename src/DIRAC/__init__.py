"""DIRAC-compatible grid data management with S3 storage elements.

The names a DIRAC script expects at the top level: ``S_OK``, ``S_ERROR``,
``gLogger``, ``gConfig``, ``initialize``, ``siteName``, ``exit``.
"""

from __future__ import annotations

import os
import sys

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.ConfigurationData import cfgWithOption, gConfigurationData
from DIRAC.ConfigurationSystem.Client.CSServerLoader import installCentralLoader
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK, returnSingleResult
from DIRAC.FrameworkSystem.Client.Logger import gLogger

__all__ = ["S_OK", "S_ERROR", "returnSingleResult", "gLogger", "gConfig", "initialize", "siteName", "rootPath"]

installCentralLoader()  # the central configuration from /DIRAC/Configuration/Servers when set
version = "0.1.0"
rootPath = os.environ.get("DIRAC", os.getcwd())


def initialize(*, log_level: str | None = None, host_credentials: bool = False, require_auth: bool = False) -> dict:
    """Load the configuration (local files, then the central source) and set the log level.

    ``host_credentials`` makes RPC clients use the host certificate instead of a proxy.
    Returns S_ERROR when a configuration file named in ``DIRACSYSCONFIG`` cannot be read.
    """
    result = gConfigurationData.loadAll()
    if log_level:
        gLogger.setLevel(log_level)
    if host_credentials:
        gConfigurationData.mergeLocal(cfgWithOption("/DIRAC/Security/UseServerCertificate", "yes"))
        gConfigurationData.refreshCentral()  # fetch the central configuration as the host
    return result


def siteName() -> str:
    """The local site's name (``/LocalSite/Site``), ``DIRAC.Client.local`` if unset."""
    return gConfig.getValue("/LocalSite/Site", "DIRAC.Client.local")


def exit(exitCode: int = 0) -> None:  # noqa: A001 - DIRAC's name (``from DIRAC import exit as DIRACExit``)
    """End the process with ``exitCode`` once the log output is flushed."""
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(exitCode)

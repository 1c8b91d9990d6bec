"""DIRAC's import path for the global configuration client."""

from DIRAC.ConfigurationSystem.Client.ConfigurationClient import gConfig

__all__ = ["gConfig"]

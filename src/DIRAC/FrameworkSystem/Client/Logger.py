"""``gLogger``: DIRAC's logging API over the standard ``logging`` module.

Each call takes a fixed message and an optional variable part
(``gLogger.error("Cannot upload", lfn)``), so identical problems group
together in log searches. Sub-loggers are ordinary child loggers.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {
    "DEBUG": 10,
    "VERBOSE": 15,
    "INFO": 20,
    "WARN": 30,
    "NOTICE": 35,
    "ERROR": 40,
    "ALWAYS": 45,
    "FATAL": 50,
}
for _name, _number in LEVELS.items():
    logging.addLevelName(_number, _name)

ROOT_NAME = "DIRAC"


class Logger:
    """A named DIRAC logger; ``getSubLogger`` makes a child."""

    def __init__(self, name: str = ROOT_NAME):
        self._logger = logging.getLogger(name)
        self.name = name

    def getSubLogger(self, subName: str) -> Logger:
        """A child logger whose records show ``parent/subName``."""
        return Logger(f"{self.name}.{subName}")

    def setLevel(self, levelName: str) -> bool:
        """Set the level by DIRAC name (case-insensitive); False for an unknown name."""
        level = LEVELS.get(str(levelName).upper())
        if level is None:
            return False
        self._logger.setLevel(level)
        return True

    def getLevel(self) -> str:
        """The effective DIRAC level name."""
        effective = self._logger.getEffectiveLevel()
        return max((name for name, num in LEVELS.items() if num <= effective), key=LEVELS.get, default="DEBUG")

    def shown(self, levelName: str) -> bool:
        """Whether a message at ``levelName`` would be printed."""
        return self._logger.isEnabledFor(LEVELS[levelName.upper()])

    def _log(self, level: int, msg: str, varMsg: object = "") -> bool:
        if self._logger.isEnabledFor(level):
            text = f"{msg} {varMsg}" if varMsg not in ("", None) else str(msg)
            self._logger.log(level, text)
        return True

    def always(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["ALWAYS"], msg, varMsg)

    def fatal(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["FATAL"], msg, varMsg)

    def error(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["ERROR"], msg, varMsg)

    def notice(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["NOTICE"], msg, varMsg)

    def warn(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["WARN"], msg, varMsg)

    warning = warn

    def info(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["INFO"], msg, varMsg)

    def verbose(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["VERBOSE"], msg, varMsg)

    def debug(self, msg: str, varMsg: object = "") -> bool:
        return self._log(LEVELS["DEBUG"], msg, varMsg)

    def exception(self, msg: str = "", varMsg: object = "") -> bool:
        """Log at ERROR with the current exception's traceback (server side only)."""
        text = f"{msg} {varMsg}" if varMsg not in ("", None) else str(msg)
        self._logger.error(text, exc_info=True)
        return True


def _configureRoot() -> None:
    root = logging.getLogger(ROOT_NAME)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s UTC %(name)s %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(LEVELS["NOTICE"])
        root.propagate = False


_configureRoot()
gLogger = Logger(ROOT_NAME)

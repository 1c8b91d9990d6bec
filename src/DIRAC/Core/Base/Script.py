"""DIRAC's ``Script``: the header of user scripts and console commands.

A script written for DIRAC runs unchanged::

    from DIRAC.Core.Base.Script import Script

    Script.registerSwitch("f:", "file=", "a local file", setFile)   # callback(value) -> S_OK/S_ERROR
    Script.registerArgument("LFN: logical file name")
    Script.registerArgument(["SE: storage element"], mandatory=False)
    Script.parseCommandLine(ignoreErrors=True)
    lfn, ses = Script.getPositionalArgs(group=True)

and so does a console command wrapped as ``@Script()`` (its module docstring is the
help text, the file name the command name), as well as the older module functions
(``from DIRAC.Core.Base.Script import parseCommandLine``).

Switches every script has: ``-o /Section/Option=value`` (set a configuration option;
a relative path is taken below ``/Scripts/<script name>``), ``-c/--cert yes`` (use
the host certificate), ``-d`` (more log output: ``-d`` verbose, ``-ddd`` debug),
``--cfg FILE`` (merge a configuration file over the local ones) and ``-h/--help``.

``parseCommandLine`` parses ``sys.argv``, loads the configuration as every command
does (``DIRAC.initialize``: ``DIRACSYSCONFIG`` or ``~/.dirac.cfg``, then the central
configuration), merges ``--cfg`` files and ``-o`` options over it (fetching the
central configuration again when they changed it), then calls the switches'
callbacks in command-line order. A usage error prints the help and exits with 2
(unknown switch) or 1 (missing or refused argument); an unreadable configuration
or a callback's S_ERROR exits with 1 unless ``ignoreErrors`` is true.

Differences from DIRAC: no ``/DIRAC/Setup`` is required (our configuration has no
setups); there are no extensions, so ``@Script()`` calls the decorated function
itself; ``-s``, ``--license`` and ``--autoreload`` do not exist.
"""

from __future__ import annotations

import functools
import getopt
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diraccfg import CFG

import DIRAC
from DIRAC.ConfigurationSystem.Client.ConfigurationData import cfgWithOption, gConfigurationData, loadCFGFile
from DIRAC.Core.Utilities.ReturnValues import isReturnStructure
from DIRAC.FrameworkSystem.Client.Logger import gLogger

EXIT_USAGE = 2
EXIT_ERROR = 1
DEBUG_LEVELS = {0: None, 1: "VERBOSE", 2: "VERBOSE"}
_BLOCK_END = r"(?:\n(?:Usage|Example|Arguments|Options|General options):+\n|$)"


class UsageError(Exception):
    """The command line does not fit the registered switches and arguments."""

    def __init__(self, message: str, exitCode: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exitCode = exitCode


@dataclass(frozen=True)
class Switch:
    """A registered switch: ``short`` like ``"f:"`` (takes a value) or ``"v"``, ``long`` like ``"file="``."""

    short: str
    long: str
    help: str
    callback: Callable[[str], dict] | None

    def matches(self, name: str) -> bool:
        return name in (self.short.rstrip(":"), self.long.rstrip("=")) and bool(name)

    def helpLine(self) -> str:
        takesValue = self.short.endswith(":") or self.long.endswith("=")
        longText = self.long.rstrip("=") + (" <value>" if takesValue else "")
        return f"  -{self.short.rstrip(':').ljust(2)} --{longText.ljust(22)} : {self.help}"


@dataclass(frozen=True)
class Argument:
    """A registered positional argument: one name, one of several names (tuple) or a list (list)."""

    names: tuple[tuple[str, str], ...]  # (name, description)
    isList: bool
    mandatory: bool
    values: tuple[str, ...] | None
    default: Any

    @property
    def marking(self) -> str:
        names = [name for name, _ in self.names]
        if self.isList:
            return f"{names[0]} [{names[0]}]"
        return names[0] if len(names) == 1 else f"<{'|'.join(names)}>"


def _argument(description: str | tuple | list, mandatory: bool, values: Any, default: Any) -> Argument:
    if isinstance(description, str):
        texts, isList = [description], False
    elif isinstance(description, tuple):
        texts, isList = list(description), False
    elif isinstance(description, list):
        texts, isList = list(description), True
        default = [] if default is None else default
    else:
        raise TypeError("an argument description is a string, a tuple (alternatives) or a list (repeated)")
    if not texts or not all(isinstance(text, str) and text.strip() for text in texts):
        raise ValueError("no argument description given")
    names = tuple(tuple(part.strip() for part in (text.split(":", 1) + [""])[:2]) for text in texts)
    return Argument(names, isList, bool(mandatory), tuple(values) if values else None, default)


@dataclass
class ParsedLine:
    """What the command line said."""

    switches: list[tuple[str, str]]  # (name as typed without dashes, value or "")
    arguments: list[str]
    grouped: list[Any]
    cfgFiles: list[str]
    wantsHelp: bool = False


@dataclass
class CommandLine:
    """The registered switches and arguments of one script, and the parsing of a command line."""

    switches: list[Switch] = field(default_factory=list)
    arguments: list[Argument] = field(default_factory=list)
    description: str = ""
    usage: str = ""
    argumentsHelp: str = ""
    example: str = ""

    def __post_init__(self) -> None:
        self.registerSwitch("o:", "option=", "Option=value to add", None)
        self.registerSwitch("c:", "cert=", "Use server certificate to connect to Core Services", None)
        self.registerSwitch("d", "debug", "Set debug mode (-ddd is extra debug)", None)
        self.registerSwitch("", "cfg=", "Load additional config file", None)
        self.registerSwitch("h", "help", "Shows this help", None)
        self.commonCount = len(self.switches)

    def registerSwitch(self, short: str, long: str, helpText: str, callback: Callable | None = None) -> None:
        """Add a switch; a name already taken raises ValueError (as DIRAC raises)."""
        short, long = short.strip(), long.strip()
        if not short and not long:
            raise ValueError("a switch needs a short or a long name")
        for known in self.switches:
            if short and known.short.rstrip(":") == short.rstrip(":"):
                raise ValueError(f"Short switch {short} is already defined!")
            if long and known.long.rstrip("=") == long.rstrip("="):
                raise ValueError(f"Long switch {long} is already defined!")
        self.switches.append(Switch(short, long, helpText, callback or None))

    def registerArgument(self, description: Any, mandatory: bool = True, values: Any = None, default: Any = None):
        """Add a positional argument (DIRAC's forms); impossible orders raise ValueError."""
        argument = _argument(description, mandatory, values, default)
        if argument.mandatory and self.arguments and not self.arguments[-1].mandatory:
            raise ValueError("The mandatory argument cannot go after the optional one.")
        lists = [known for known in [*self.arguments, argument] if known.isList]
        if len(lists) > 1:
            raise ValueError("Can't calculate list of arguments when there are two such arguments of type.")
        self.arguments.append(argument)
        if lists and lists[0] is not argument:
            after = self.arguments[self.arguments.index(lists[0]) :]
            if not all(known.mandatory for known in after):
                raise ValueError("Can't calculate list of arguments when not all arguments defined as mandatory.")

    def setUsageMessage(self, text: str | None) -> None:
        """Take the description and the Usage/Arguments/Example blocks of a docstring."""
        if not text:
            return
        blocks = {"usage": "Usage", "argumentsHelp": "Arguments", "example": "Example"}
        found = re.search(rf"(.*?){_BLOCK_END}", text, re.DOTALL)
        if found:
            self.description = found.group(1).strip("\n")
        for attribute, title in blocks.items():
            found = re.search(rf"{title}:+(.*?){_BLOCK_END}", text, re.DOTALL)
            if found:
                setattr(self, attribute, found.group(1).strip("\n"))

    def parse(self, argv: list[str]) -> ParsedLine:
        """Split ``argv`` (without the program name) into switches and arguments; raises UsageError."""
        shortNames = "".join(switch.short for switch in self.switches)
        longNames = [switch.long for switch in self.switches if switch.long]
        try:
            options, arguments = getopt.gnu_getopt(argv, shortNames, longNames)
        except getopt.GetoptError as exc:
            raise UsageError(f"Error when parsing command line arguments: {exc}", EXIT_USAGE) from None
        switches = [(name.lstrip("-"), value) for name, value in options]
        parsed = ParsedLine(switches, list(arguments), [], [value for name, value in switches if name == "cfg"])
        parsed.wantsHelp = any(name in ("h", "help") for name, _ in switches)
        if not parsed.wantsHelp:
            parsed.grouped = self._group(parsed.arguments)
        return parsed

    def _group(self, given: list[str]) -> list[Any]:
        """The arguments grouped as registered (a list argument takes what the others leave)."""
        if not self.arguments:
            return []
        mandatory = sum(1 for argument in self.arguments if argument.mandatory)
        if len(given) < mandatory:
            raise UsageError("Error when parsing command line arguments: not all mandatory arguments are defined.")
        if len(given) > len(self.arguments) and not any(argument.isList for argument in self.arguments):
            extra = " ".join(given[len(self.arguments) :])
            raise UsageError(f"Error when parsing command line arguments: unexpected arguments {extra}")
        grouped: list[Any] = []
        position = 0
        spare = max(len(given) - len(self.arguments), 0)
        for argument in self.arguments:
            if position >= len(given):
                grouped.append(argument.default)
                continue
            taken = given[position : position + 1 + spare] if argument.isList else [given[position]]
            position += len(taken)
            for value in taken:
                if argument.values and value not in argument.values:
                    raise UsageError(
                        f'Error when parsing command line arguments: "{value}" does not match the allowed values '
                        f"for {argument.marking}"
                    )
            grouped.append(taken if argument.isList else taken[0])
        return grouped

    def helpText(self, scriptName: str) -> str:
        """The text ``-h`` prints."""
        lines = [f"\n{self.description}\n"] if self.description else []
        if self.usage:
            lines += ["Usage:", self.usage]
        else:
            markings = " ".join(argument.marking for argument in self.arguments)
            lines += ["Usage:", f"  {scriptName} [options] ... {markings}".rstrip()]
        lines += ["", "General options:"] + [switch.helpLine() for switch in self.switches[: self.commonCount]]
        if len(self.switches) > self.commonCount:
            lines += ["", "Options:"] + [switch.helpLine() for switch in self.switches[self.commonCount :]]
        if self.arguments:
            described = []
            for argument in self.arguments:
                for name, text in argument.names:
                    text += f" [{', '.join(argument.values)}]" if argument.values else ""
                    text += f" [default: {argument.default}]" if argument.default else ""
                    text += "" if argument.mandatory else " (optional)"
                    if (name, text) not in described:
                        described.append((name, text))
            width = max(len(name) for name, _ in described)
            lines += ["", "Arguments:"] + [f"  {name}:{' ' * (width - len(name))}  {text}" for name, text in described]
        elif self.argumentsHelp:
            lines += ["", "Arguments:", self.argumentsHelp]
        if self.example:
            lines += ["", "Example:", self.example]
        return "\n".join(lines) + "\n"


def _scriptNameFromArgv() -> str:
    return os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "script").split(".")[0].replace("_", "-")


class Script:
    """The script's command line and start-up; use the class methods, or ``@Script()`` on ``main``."""

    scriptName: str | None = None
    alreadyInitialized = False
    commandLine = CommandLine()
    parsed: ParsedLine | None = None
    defaultOptions: dict[str, str] = {}

    def __call__(self, func: Callable | None = None) -> Any:
        """``@Script()`` on a function makes it the command; calling the command runs it."""
        if func is not None:
            self._func = func
            Script.commandLine.setUsageMessage(func.__globals__.get("__doc__"))
            moduleFile = func.__globals__.get("__file__") or ""
            Script.scriptName = os.path.basename(moduleFile)[:-3].replace("_", "-") or None
            return functools.wraps(func)(self)
        return self._func()

    # Registration

    @classmethod
    def registerSwitch(cls, showKey: str, longKey: str, helpString: str, callback: Callable | bool = False) -> None:
        """A switch: ``callback(value)`` is called by ``parseCommandLine``, else see ``getUnprocessedSwitches``."""
        cls.commandLine.registerSwitch(showKey, longKey, helpString, callback or None)

    @classmethod
    def registerSwitches(cls, switches: list[tuple]) -> None:
        """Several ``registerSwitch`` argument tuples."""
        for switch in switches:
            cls.registerSwitch(*switch)

    @classmethod
    def registerArgument(cls, description: Any, mandatory: bool = True, values: Any = None, default: Any = None):
        """A positional argument: ``"Name: help"``, a tuple of alternatives, or a list (one or more values)."""
        cls.commandLine.registerArgument(description, mandatory, values, default)

    @classmethod
    def setUsageMessage(cls, usageMessage: str) -> None:
        """The help text: a description, then optional ``Usage:``, ``Arguments:``, ``Example:`` blocks."""
        cls.commandLine.setUsageMessage(usageMessage)

    @classmethod
    def addDefaultOptionValue(cls, option: str, value: Any) -> None:
        """A configuration option set after loading when the configuration does not have it."""
        cls.defaultOptions[option] = str(value)

    # Parsing and start-up

    @classmethod
    def _name(cls) -> str:
        return cls.scriptName or _scriptNameFromArgv()

    @classmethod
    def _parsedLine(cls) -> ParsedLine:
        if cls.parsed is None:
            try:
                cls.parsed = cls.commandLine.parse(sys.argv[1:])
            except UsageError as exc:
                gLogger.fatal(str(exc))
                cls.showHelp(exitCode=exc.exitCode)
            if cls.parsed.wantsHelp:
                cls.showHelp()
        return cls.parsed

    @classmethod
    def parseCommandLine(cls, script: str | bool = False, ignoreErrors: bool = False, initializeMonitor: bool = False):
        """Parse the command line, load the configuration, run the callbacks; (switches, arguments) left."""
        if not cls.alreadyInitialized:
            cls.initialize(script, ignoreErrors, initializeMonitor, enableCommandLine=True)
        return cls.getUnprocessedSwitches(), cls.getPositionalArgs()

    @classmethod
    def initialize(
        cls,
        script: str | bool = False,
        ignoreErrors: bool = False,
        initializeMonitor: bool = False,
        enableCommandLine: bool = False,
    ) -> bool:
        """Load the configuration (and, with ``enableCommandLine``, apply the command line); once per process."""
        if cls.alreadyInitialized:
            return False
        cls.alreadyInitialized = True
        if script:
            cls.scriptName = str(script)
        parsed = cls._parsedLine() if enableCommandLine else ParsedLine([], [], [], [])
        errors = cls._loadConfiguration(parsed)
        if enableCommandLine:
            errors += cls._runCallbacks(parsed)
        if errors and not ignoreErrors:
            gLogger.error("There were errors when loading configuration", "\n".join(errors))
            sys.exit(EXIT_ERROR)
        return True

    @classmethod
    def _optionPath(cls, path: str) -> str:
        return path if path.startswith("/") else f"/Scripts/{cls._name()}/{path}"

    @classmethod
    def _loadConfiguration(cls, parsed: ParsedLine) -> list[str]:
        """Local files, central configuration, ``--cfg``, ``-o``, ``-c`` and ``-d``; the errors met."""
        loaded = DIRAC.initialize()
        errors = [] if loaded["OK"] else [loaded["Message"]]
        overrides = CFG()
        for path in parsed.cfgFiles:
            result = loadCFGFile(os.path.expanduser(path))
            if result["OK"]:
                overrides = overrides.mergeWith(result["Value"])
            else:
                errors.append(f"--cfg {path}: {result['Message']}")
        debug = 0
        for name, value in parsed.switches:
            if name in ("o", "option"):
                option, separator, optionValue = value.partition("=")
                if not separator or not option.strip():
                    errors.append("-o expects Option=value, for example -o /DIRAC/Security/UseServerCertificate=yes")
                    continue
                overrides = overrides.mergeWith(cfgWithOption(cls._optionPath(option.strip()), optionValue))
            elif name in ("c", "cert"):
                useCertificate = "yes" if value.lower() in ("y", "yes", "true") else "no"
                overrides = overrides.mergeWith(cfgWithOption("/DIRAC/Security/UseServerCertificate", useCertificate))
            elif name in ("d", "debug"):
                debug += 1
        if overrides.listAll():
            gConfigurationData.mergeLocal(overrides)
            refreshed = gConfigurationData.refreshCentral()
            if not refreshed["OK"]:
                errors.append(refreshed["Message"])
        for option, value in cls.defaultOptions.items():
            if DIRAC.gConfig.getValue(cls._optionPath(option)) is None:
                gConfigurationData.mergeLocal(cfgWithOption(cls._optionPath(option), value))
        level = DEBUG_LEVELS.get(debug, "DEBUG")
        if level:
            gLogger.setLevel(level)
        return errors

    @classmethod
    def _runCallbacks(cls, parsed: ParsedLine) -> list[str]:
        """Call the callback of each user switch given, in order; their errors."""
        errors = []
        for name, value in parsed.switches:
            switch = next((known for known in cls.commandLine.switches if known.matches(name)), None)
            if switch is None or switch.callback is None:
                continue
            result = switch.callback(value)
            if not isReturnStructure(result):
                errors.append(f"Callback for switch '{name}' does not return S_OK or S_ERROR")
            elif not result["OK"]:
                errors.append(result["Message"])
        return errors

    # What the command line said

    @classmethod
    def getPositionalArgs(cls, group: bool = False) -> list:
        """The positional arguments; ``group=True``: one entry per registered argument (alone if only one)."""
        parsed = cls._parsedLine()
        if not group:
            return parsed.arguments
        return parsed.grouped[0] if len(parsed.grouped) == 1 else parsed.grouped

    @classmethod
    def getUnprocessedSwitches(cls) -> list[tuple[str, str]]:
        """``(name, value)`` of every switch given that has no callback (common switches excluded)."""
        parsed = cls._parsedLine()
        user = cls.commandLine.switches[cls.commandLine.commonCount :]
        return [
            (name, value)
            for name, value in parsed.switches
            if any(switch.matches(name) and switch.callback is None for switch in user)
        ]

    @classmethod
    def getExtraCLICFGFiles(cls) -> list[str]:
        """The files given with ``--cfg``."""
        return list(cls._parsedLine().cfgFiles)

    @classmethod
    def showHelp(cls, dummy: Any = False, exitCode: int = 0) -> None:
        """Print the help and exit with ``exitCode``."""
        sys.stdout.write(cls.commandLine.helpText(cls._name()))
        sys.stdout.flush()
        sys.exit(exitCode)


# DIRAC's older module-level API.
parseCommandLine = Script.parseCommandLine
initialize = Script.initialize
registerSwitch = Script.registerSwitch
registerArgument = Script.registerArgument
getPositionalArgs = Script.getPositionalArgs
getUnprocessedSwitches = Script.getUnprocessedSwitches
getExtraCLICFGFiles = Script.getExtraCLICFGFiles
setUsageMessage = Script.setUsageMessage
addDefaultOptionValue = Script.addDefaultOptionValue
showHelp = Script.showHelp

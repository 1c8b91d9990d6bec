"""dirac-dms-filecatalog-cli: an interactive shell over the file catalog (ls, cd, mkdir, chown, chgrp, chmod, meta).

Commands are typed at the ``FC:<cwd>>`` prompt, or read one per line from
standard input when it is not a terminal (``echo "ls /vo" | dirac-dms-filecatalog-cli``);
then no prompt is printed. Relative paths are resolved against the current
directory. A failed command prints ``ERROR: <command>: <reason>`` on stderr and
the shell goes on; the exit code is 0 when every command succeeded, 1 otherwise
(2 when the catalog cannot be set up at all).
"""

from __future__ import annotations

import argparse
import cmd
import posixpath
import shlex
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TextIO

import DIRAC
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import splitBulk
from DIRAC.DataManagementSystem.scripts import _common
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog
from DIRAC.Resources.Catalog.Utilities import iterDirectoryPages

#: Metadata keys that are internal row ids, not for people.
HIDDEN_KEYS = ("FileID", "DirID")


class CommandError(Exception):
    """A command failed; the message is what the user is shown."""


def modeString(mode: Any, isDirectory: bool) -> str:
    """``drwxr-xr-x`` style text of a POSIX mode (``?`` for an unknown one)."""
    if not isinstance(mode, int):
        return ("d" if isDirectory else "-") + "?" * 9
    bits = "".join(char if mode & (1 << (8 - index)) else "-" for index, char in enumerate("rwxrwxrwx"))
    return ("d" if isDirectory else "-") + bits


def octalMode(mode: Any) -> str:
    """``755`` for 0o755; the value as text when it is not an int."""
    return format(mode, "03o") if isinstance(mode, int) else str(mode)


def _dateText(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


class FileCatalogShell(cmd.Cmd):
    """The shell: one ``do_<command>`` per command; its docstring is its help."""

    def __init__(
        self,
        catalog: Any,
        home: str = "/",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.catalog = catalog
        self.stderr = stderr or sys.stderr
        self.cwd = "/"
        self.home = home
        self.failures = 0
        self.interactive = (stdin or sys.stdin).isatty() if interactive is None else interactive
        # Without a terminal: read lines from the stream and print no prompt.
        self.use_rawinput = self.interactive
        self._setPrompt()

    # ------------------------------------------------------------------ plumbing

    def _setPrompt(self) -> None:
        self.prompt = f"FC:{self.cwd}> " if self.interactive else ""

    def out(self, text: str = "") -> None:
        """One line of normal output (control characters escaped: one entry, one line)."""
        self.stdout.write(_common.printable(text) + "\n")

    def fail(self, command: str, reason: str) -> None:
        """Report a failed command and remember that one failed (the exit code says so)."""
        self.failures += 1
        self.stderr.write(f"ERROR: {_common.printable(command)}: {_common.printable(reason)}\n")
        self.stderr.flush()

    def path(self, text: str) -> str:
        """``text`` as an absolute, normalised LFN path (relative to the current directory; ``~`` is home)."""
        if text == "~" or text.startswith("~/"):
            text = self.home + text[1:]
        joined = posixpath.normpath(posixpath.join(self.cwd, text))
        return "/" + joined.lstrip("/")

    def single(self, call: Callable[..., dict], path: str, what: str, *args: Any) -> Any:
        """The value for ``path`` of a bulk catalog call, or CommandError with the reason."""
        successful, failed = splitBulk(call(path, *args), [path], what)
        if path in failed:
            raise CommandError(failed[path])
        return successful[path]

    def run(self, command: str, line: str, action: Callable[[list[str]], None]) -> None:
        """Split ``line`` into words and run ``action``; any CommandError is reported as a failure."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.fail(command, f"cannot parse the arguments: {exc}")
            return
        try:
            action(words)
        except CommandError as exc:
            self.fail(command, str(exc))

    @staticmethod
    def options(words: list[str], allowed: str, usage: str) -> tuple[set[str], list[str]]:
        """Single-letter flags (``-l``, ``-R``...) among ``allowed`` and the remaining arguments."""
        flags: set[str] = set()
        rest: list[str] = []
        for word in words:
            if word.startswith("-") and len(word) > 1 and not rest:
                unknown = set(word[1:]) - set(allowed)
                if unknown:
                    raise CommandError(f"unknown option -{''.join(sorted(unknown))}; usage: {usage}")
                flags.update(word[1:])
            else:
                rest.append(word)
        return flags, rest

    # ------------------------------------------------------------------ cmd hooks

    def emptyline(self) -> bool:
        """An empty line does nothing (cmd's default repeats the last command)."""
        return False

    def default(self, line: str) -> bool:
        if line.lstrip().startswith("#"):
            return False
        self.fail(line.split()[0], "unknown command (type help for the list)")
        return False

    def get_names(self) -> list[str]:
        """The attribute names ``help`` lists: without ``do_EOF`` (end of input is not a command to type)."""
        return [name for name in super().get_names() if name != "do_EOF"]

    def postcmd(self, stop: bool, line: str) -> bool:
        self.stdout.flush()
        return stop

    # ------------------------------------------------------------------ navigation

    def do_pwd(self, line: str) -> None:
        """pwd: print the current directory."""
        self.out(self.cwd)

    def do_cd(self, line: str) -> None:
        """cd [path]: change the current directory (without a path: your home directory, or / when unknown)."""

        def action(words: list[str]) -> None:
            if len(words) > 1:
                raise CommandError("usage: cd [path]")
            target = self.path(words[0]) if words else self.home
            if not self.single(self.catalog.isDirectory, target, "catalog isDirectory"):
                raise CommandError(f"Not a directory or no such directory: {target}")
            self.cwd = target
            self._setPrompt()

        self.run("cd", line, action)

    # ------------------------------------------------------------------ listing

    def do_ls(self, line: str) -> None:
        """ls [-l] [path]: list a directory (the current one by default), or show one file.
        -l: long listing (mode, replicas, owner, group, size, modification date, name).
        A directory is listed page by page as the catalog sends it: subdirectories, then files."""

        def action(words: list[str]) -> None:
            flags, rest = self.options(words, "l", "ls [-l] [path]")
            if len(rest) > 1:
                raise CommandError("usage: ls [-l] [path]")
            target = self.path(rest[0]) if rest else self.cwd
            for entries in self._listing(target, "l" in flags):
                self._printEntries(entries, "l" in flags)

        self.run("ls", line, action)

    def _printEntries(self, entries: list[tuple[str, bool, dict, dict]], long: bool) -> None:
        """Print ``[(name, isDirectory, metadata, replicas)]``, one line each (columns aligned within them)."""
        if not long:
            for name, _isDirectory, _meta, _replicas in entries:
                self.out(name)
            return
        owners = max((len(str(meta.get("Owner", ""))) for _n, _d, meta, _r in entries), default=0)
        groups = max((len(str(meta.get("OwnerGroup", ""))) for _n, _d, meta, _r in entries), default=0)
        for name, isDirectory, meta, replicas in entries:
            size = 0 if isDirectory else meta.get("Size", "")
            count = "-" if isDirectory else len(replicas)
            self.out(
                f"{modeString(meta.get('Mode'), isDirectory)} {count:>3} {meta.get('Owner', ''):<{owners}} "
                f"{meta.get('OwnerGroup', ''):<{groups}} {size:>12} "
                f"{_dateText(meta.get('ModificationDate'))} {name}"
            )
        self.stdout.flush()

    def _listing(self, target: str, verbose: bool) -> Iterator[list[tuple[str, bool, dict, dict]]]:
        """The entries ``[(name, isDirectory, metadata, replicas)]`` of a directory, one list per page
        (only one page in memory: a directory of millions of entries streams), or of one file."""
        for number, result in enumerate(iterDirectoryPages(self.catalog.listDirectoryPage, target, verbose)):
            if not result["OK"]:
                raise CommandError(result["Message"])
            if target not in result["Value"]["Successful"]:
                reason = result["Value"]["Failed"].get(target, f"no answer for {target}")
                if number == 0:
                    yield self._fileEntry(target, verbose, reason)
                    return
                raise CommandError(reason)
            page = result["Value"]["Successful"][target]
            entries = [(posixpath.basename(path), True, meta, {}) for path, meta in sorted(page["SubDirs"].items())]
            entries.extend(
                (posixpath.basename(path), False, entry.get("MetaData", {}), entry.get("Replicas", {}))
                for path, entry in sorted(page["Files"].items())
            )
            yield entries

    def _fileEntry(self, target: str, verbose: bool, reason: str) -> list[tuple[str, bool, dict, dict]]:
        """ls of a file shows that file (one more lookup only on this path); else ``reason`` fails."""
        isFile, _ = splitBulk(self.catalog.isFile(target), [target], "catalog isFile")
        if not isFile.get(target):
            raise CommandError(reason)
        meta = self.single(self.catalog.getFileMetadata, target, "catalog getFileMetadata")
        replicas = self.single(self.catalog.getReplicas, target, "catalog getReplicas") if verbose else {}
        return [(posixpath.basename(target), False, meta, replicas)]

    def do_meta(self, line: str) -> None:
        """meta path: show the catalog metadata of a file or a directory (owner, group, mode, size, checksum...)."""

        def action(words: list[str]) -> None:
            if len(words) != 1:
                raise CommandError("usage: meta path")
            target = self.path(words[0])
            if self.single(self.catalog.isDirectory, target, "catalog isDirectory"):
                meta = self.single(self.catalog.getDirectoryMetadata, target, "catalog getDirectoryMetadata")
            else:
                meta = self.single(self.catalog.getFileMetadata, target, "catalog getFileMetadata")
            self.out(target)
            for key in sorted(meta):
                if key in HIDDEN_KEYS:
                    continue
                value = meta[key]
                if key == "Mode":
                    text = f"{octalMode(value)} ({modeString(value, meta.get('Type') == 'Directory')})"
                else:
                    text = _dateText(value) if isinstance(value, datetime) else str(value)
                self.out(f"  {key}: {text}")

        self.run("meta", line, action)

    # ------------------------------------------------------------------ changes

    def do_mkdir(self, line: str) -> None:
        """mkdir path [path ...]: create directories (missing parents are created too)."""

        def action(words: list[str]) -> None:
            if not words:
                raise CommandError("usage: mkdir path [path ...]")
            for target in dict.fromkeys(self.path(word) for word in words):
                try:
                    self.single(self.catalog.createDirectory, target, "catalog createDirectory")
                except CommandError as exc:
                    self.fail("mkdir", str(exc))

        self.run("mkdir", line, action)

    def _change(self, command: str, line: str, method: str, parse: Callable[[str], Any], what: str) -> None:
        """chown / chgrp / chmod: ``command [-R] <what> path [path ...]`` through ``method`` of the catalog."""
        usage = f"{command} [-R] {what} path [path ...]"

        def action(words: list[str]) -> None:
            flags, rest = self.options(words, "R", usage)
            if len(rest) < 2:
                raise CommandError(f"usage: {usage}")
            value = parse(rest[0])
            for target in dict.fromkeys(self.path(word) for word in rest[1:]):
                try:
                    self.single(
                        lambda path: getattr(self.catalog, method)({path: value}, "R" in flags),
                        target,
                        f"catalog {method}",
                    )
                except CommandError as exc:
                    self.fail(command, str(exc))

        self.run(command, line, action)

    def do_chown(self, line: str) -> None:
        """chown [-R] owner path [path ...]: give paths to another user (catalog managers only)."""
        self._change("chown", line, "changePathOwner", str, "owner")

    def do_chgrp(self, line: str) -> None:
        """chgrp [-R] group path [path ...]: set the group of paths (the owner, to one of their groups)."""
        self._change("chgrp", line, "changePathGroup", str, "group")

    def do_chmod(self, line: str) -> None:
        """chmod [-R] mode path [path ...]: set the mode of paths, in octal (e.g. 750)."""

        def parse(text: str) -> int:
            try:
                mode = int(text, 8)
            except ValueError:
                raise CommandError(f"mode must be octal digits (e.g. 755), got {text!r}") from None
            if not 0 <= mode <= 0o777:
                raise CommandError(f"mode must be between 000 and 777, got {text!r}")
            return mode

        self._change("chmod", line, "changePathMode", parse, "mode")

    # ------------------------------------------------------------------ leaving

    def do_quit(self, line: str) -> bool:
        """quit: leave the shell."""
        return True

    def do_exit(self, line: str) -> bool:
        """exit: leave the shell."""
        return True

    def do_EOF(self, line: str) -> bool:  # noqa: N802 - cmd's name for end of input
        """End of input (Ctrl-D) leaves the shell."""
        if self.interactive:
            self.out()
        return True


def homeDirectory(vo: str) -> str:
    """``/<vo>/user/<initial>/<username>`` of the current proxy's user, ``/`` when unknown."""
    from DIRAC.Core.Security.ProxyInfo import getProxyInfo

    result = getProxyInfo()
    username = result["Value"].get("username") if result["OK"] and isinstance(result["Value"], dict) else None
    if not (vo and username):
        return "/"
    return f"/{vo}/user/{username[0]}/{username}"


def main(argv: list[str] | None = None) -> int:
    parser = _common.makeParser(
        "dirac-dms-filecatalog-cli", __doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:])
    )
    parser.add_argument("-f", "--file-catalog", default=None, help="the catalog to use (default: the configured ones)")
    args: argparse.Namespace = parser.parse_args(argv)
    started = DIRAC.initialize(log_level="DEBUG" if args.debug else None)
    if not started["OK"]:
        print(f"ERROR: cannot load the configuration: {started['Message']}", file=sys.stderr)
        return _common.EXIT_ERROR
    catalog = FileCatalog(catalogs=args.file_catalog)
    if not catalog.isOK():
        print(f"ERROR: the file catalog is not usable: {catalog.errorMessage}", file=sys.stderr)
        return _common.EXIT_ERROR
    shell = FileCatalogShell(catalog, home=homeDirectory(catalog.vo))
    try:
        shell.cmdloop(intro="File catalog shell; type help for the commands." if shell.interactive else "")
    except KeyboardInterrupt:
        shell.out()
    return _common.EXIT_FAILED_ITEMS if shell.failures else _common.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""A per-transaction view of the catalog entries a bulk call touches, loaded with a few set queries.

For N paths the view loads, in chunks, every directory among the paths and
their ancestors, and the files that sit at those paths or block them (a file
where a directory would be needed). Every decision of a bulk call (kind,
nearest existing directory, permission) is then answered from memory: the
cost is a handful of queries per call, not a round trip per LFN.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, select

from DIRAC.DataManagementSystem.DB.FileCatalogSchema import directories, files

#: Bound parameters per IN (...) query: well below every database's limit.
CHUNK = 500


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list]:
    """Successive lists of at most ``size`` items."""
    sequence = list(items)
    for start in range(0, len(sequence), size):
        yield sequence[start : start + size]


def parentOf(path: str) -> str:
    """The directory holding ``path`` ('/' for top-level entries and for '/')."""
    parent = path.rpartition("/")[0]
    return parent or "/"


def ancestorsOf(path: str) -> list[str]:
    """Strict ancestors of ``path``, nearest first, ending with '/'."""
    result = []
    while path != "/":
        path = parentOf(path)
        result.append(path)
    return result


def joinPath(directory: str, name: str) -> str:
    """``directory/name`` without doubling the root's slash."""
    return f"/{name}" if directory == "/" else f"{directory}/{name}"


def childToward(top: str, path: str) -> str:
    """Name of the entry directly below ``top`` on the way down to ``path``."""
    rest = path[1:] if top == "/" else path[len(top) + 1 :]
    return rest.split("/", 1)[0]


class CatalogView:
    """Directories and files relevant to ``paths``, as rows keyed by full path."""

    def __init__(self, connection: Connection, paths: Iterable[str]):
        self.connection = connection
        self.paths = list(paths)
        self.dirs: dict[str, Any] = {}
        self.files: dict[str, Any] = {}
        self._loadDirectories()
        self._loadFiles()

    def _loadDirectories(self) -> None:
        wanted: set[str] = set()
        for path in self.paths:
            wanted.add(path)
            wanted.update(ancestorsOf(path))
        self.loadDirectories(wanted)

    def loadDirectories(self, paths: Iterable[str]) -> None:
        """(Re)load the rows of the directories at ``paths`` that exist."""
        for chunk in chunks(paths):
            for row in self.connection.execute(select(directories).where(directories.c.Path.in_(chunk))):
                self.dirs[row.Path] = row

    def _loadFiles(self) -> None:
        # The one entry per path that may be a file: the path itself when its parent
        # exists, else the entry directly below the nearest existing ancestor.
        pairs: set[tuple[int, str]] = set()
        for path in self.paths:
            if path == "/" or path in self.dirs:
                continue
            top = self.nearestDir(path)
            pairs.add((top.DirID, childToward(top.Path, path)))
        self.loadFiles(pairs)

    def loadFiles(self, pairs: Iterable[tuple[int, str]]) -> None:
        """(Re)load the files named by (directory id, file name) pairs."""
        pathById = {row.DirID: path for path, row in self.dirs.items()}
        for chunk in chunks(pairs):
            wanted = set(chunk)
            query = select(files).where(
                files.c.DirID.in_({dirId for dirId, _ in chunk}), files.c.FileName.in_({name for _, name in chunk})
            )
            for row in self.connection.execute(query):
                if (row.DirID, row.FileName) in wanted:
                    self.files[joinPath(pathById[row.DirID], row.FileName)] = row

    def kind(self, path: str) -> str | None:
        """'Directory', 'File' or None when nothing is registered at ``path``."""
        if path in self.dirs:
            return "Directory"
        if path in self.files:
            return "File"
        return None

    def nearestDir(self, path: str) -> Any:
        """Row of the nearest existing strict ancestor directory ('/' itself for '/')."""
        for ancestor in ancestorsOf(path):
            if ancestor in self.dirs:
                return self.dirs[ancestor]
        return self.dirs["/"]

    def blockingFile(self, path: str) -> str | None:
        """A file registered where an ancestor directory of ``path`` would have to be, if any."""
        top = self.nearestDir(path)
        candidate = joinPath(top.Path, childToward(top.Path, path)) if path != "/" else path
        if candidate != path and candidate in self.files:
            return candidate
        return None

    def missingDirectories(self, path: str) -> list[str]:
        """Ancestors of ``path`` that do not exist yet, top-down."""
        missing = []
        for ancestor in ancestorsOf(path):
            if ancestor in self.dirs:
                break
            missing.append(ancestor)
        return list(reversed(missing))

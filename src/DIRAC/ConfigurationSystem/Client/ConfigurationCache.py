"""The last central configuration a client loaded, kept on disk for when no configuration server answers.

Where: ``/DIRAC/Configuration/CacheFile`` when the local configuration sets it,
otherwise ``$XDG_CACHE_HOME/dirac/configuration-<id>.json`` (``~/.cache/dirac``),
``<id>`` derived from the ``/DIRAC/Configuration/Servers`` list so that two set-ups
of one user never mix. The folder is made mode 0700 and the file is written
atomically with mode 0600 (``writePrivateFile``: a link planted at the name, a folder
everybody may write to, a file of another user are refused): it is per user, as the central configuration may name
internal hosts. A cache file that another user owns, or that others may write, is
ignored (fail closed: it could redirect the client to other services).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

from diraccfg import CFG

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.PrivateFile import writePrivateFile
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

CACHE_FILE_OPTION = "DIRAC/Configuration/CacheFile"


def _serverSet(servers: str) -> str:
    """The server list in a canonical form (order and blanks do not matter)."""
    return ",".join(sorted(item.strip() for item in str(servers).split(",") if item.strip()))


def cachePath(localCFG: CFG, servers: str) -> str:
    """The cache file of the central configuration served by ``servers`` for this user."""
    configured = str(localCFG.getOption(CACHE_FILE_OPTION, "") or "").strip()
    if configured:
        return os.path.expanduser(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(_serverSet(servers).encode()).hexdigest()[:16]
    return os.path.join(base, "dirac", f"configuration-{digest}.json")


def saveCache(path: str, servers: str, version: str, text: str) -> dict:
    """Write the configuration ``text`` of ``version`` atomically, readable by this user only."""
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        saved = {"servers": servers, "version": version, "saved": time.time(), "cfg": text}
        writePrivateFile(path, json.dumps(saved), "configuration cache")
    except OSError as exc:
        return S_ERROR(DErrno.EIO, f"cannot keep the central configuration in {path}: {exc.strerror or exc}")
    return S_OK(path)


def loadCache(path: str, servers: str) -> dict:
    """S_OK((CFG, version, saved timestamp)) of the cached configuration of ``servers``; S_ERROR why not."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return S_ERROR(DErrno.ENOENT, f"no cached central configuration at {path}")
    except OSError as exc:
        return S_ERROR(DErrno.EIO, f"cannot read the cached central configuration {path}: {exc.strerror}")
    with os.fdopen(descriptor) as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return S_ERROR(DErrno.EACCES, f"ignoring {path}: another user owns it or may write it")
        try:
            saved = json.load(handle)
            text, version, when = str(saved["cfg"]), str(saved["version"]), float(saved["saved"])
        except (ValueError, KeyError, TypeError) as exc:
            return S_ERROR(DErrno.EVALUE, f"ignoring the unreadable cached configuration {path}: {exc}")
    if _serverSet(saved.get("servers", "")) != _serverSet(servers):
        return S_ERROR(DErrno.ECONF, f"ignoring {path}: it was loaded from other servers ({saved.get('servers')})")
    try:
        return S_OK((CFG().loadFromBuffer(text), version, when))
    except Exception as exc:  # noqa: BLE001 - diraccfg raises various errors on a damaged text
        return S_ERROR(DErrno.EVALUE, f"ignoring the damaged cached configuration {path}: {exc}")

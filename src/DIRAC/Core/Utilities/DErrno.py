"""Error codes: the POSIX ones plus DIRAC's own, and ``cmpError`` to test a result's cause."""

from __future__ import annotations

import errno as _posix
import os
from typing import Any

# POSIX codes used throughout the storage layer, re-exported under DIRAC's names.
ENOENT = _posix.ENOENT
EEXIST = _posix.EEXIST
EACCES = _posix.EACCES
EPERM = _posix.EPERM
EINVAL = _posix.EINVAL
EIO = _posix.EIO
ENOTDIR = _posix.ENOTDIR
EISDIR = _posix.EISDIR
ENOTEMPTY = _posix.ENOTEMPTY
ETIMEDOUT = _posix.ETIMEDOUT
ECONNREFUSED = _posix.ECONNREFUSED
EPROTONOSUPPORT = _posix.EPROTONOSUPPORT
ENOSPC = _posix.ENOSPC
EFBIG = _posix.EFBIG

# DIRAC's own codes live above 1000, as in DIRAC.
EIMPERR = 1001
ENOMETH = 1002
ECONF = 1003
EVALUE = 1004
EEEXCEPTION = 1005
ETYPE = 1006
ENOAUTH = 1007
ESECTION = 1008
ENOPLUGIN = 1009
ECERTREAD = 1010
ENOCERT = 1011
ENOPROXY = 1012
EPROXYREAD = 1013
ECERTEXPIRED = 1014
EBADCKS = 1015
EFILESIZE = 1016
EWRONGSE = 1017
ESENOTALLOWED = 1018
ERPC = 1019

_DIRAC_MESSAGES = {
    EIMPERR: "Failed to import library",
    ENOMETH: "No such method or function",
    ECONF: "Configuration error",
    EVALUE: "Wrong value",
    EEEXCEPTION: "Exception",
    ETYPE: "Object Type Error",
    ENOAUTH: "Unauthorized query",
    ESECTION: "Section is not found",
    ENOPLUGIN: "Plugin not found",
    ECERTREAD: "Cannot read certificate",
    ENOCERT: "No certificate loaded",
    ENOPROXY: "No proxy found",
    EPROXYREAD: "Cannot read proxy",
    ECERTEXPIRED: "Certificate or proxy has expired",
    EBADCKS: "Bad checksum",
    EFILESIZE: "Bad file size",
    EWRONGSE: "Wrong storage element",
    ESENOTALLOWED: "Storage element not allowed",
    ERPC: "RPC call failed",
}


def strerror(code: int) -> str:
    """The text for ``code``: DIRAC's own, else the operating system's."""
    if code in _DIRAC_MESSAGES:
        return _DIRAC_MESSAGES[code]
    return os.strerror(code)


def cmpError(inErr: Any, candidate: int) -> bool:
    """True when ``inErr`` (an S_ERROR dict, an errno, or an exception with errno) is ``candidate``."""
    if isinstance(inErr, dict):
        return inErr.get("Errno", 0) == candidate
    if isinstance(inErr, int) and not isinstance(inErr, bool):
        return inErr == candidate
    return getattr(inErr, "errno", None) == candidate

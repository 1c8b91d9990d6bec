"""Where credentials live: the user's proxy, user and host certificates, the CA directory.

Environment variables (the grid conventions) win over the configuration, which wins
over the standard paths. Functions return a path (or a (cert, key) pair) only when it
exists, else False, as in DIRAC; ``getDefaultProxyLocation`` is the one that does not
check, because it names where a new proxy should be written.
"""

from __future__ import annotations

import os
import stat

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.FrameworkSystem.Client.Logger import gLogger

SECURITY_SECTION = "/DIRAC/Security"
DEFAULT_CA_DIR = "/etc/grid-security/certificates"
DEFAULT_HOST_CERT = "/etc/grid-security/hostcert.pem"
DEFAULT_HOST_KEY = "/etc/grid-security/hostkey.pem"
#: The grid's default proxy file, in a folder everybody may write to.
DEFAULT_PROXY_TEMPLATE = "/tmp/x509up_u{uid}"


def getDefaultProxyLocation() -> str:
    """``$X509_USER_PROXY``, else ``/tmp/x509up_u<uid>``, whether or not the file exists."""
    return os.environ.get("X509_USER_PROXY") or DEFAULT_PROXY_TEMPLATE.format(uid=os.getuid())


def _ownRegularFile(path: str) -> bool:
    """True for a regular file (not a link) of the current user: anybody can plant a name in /tmp,
    and a proxy planted there would make us act as its owner (uploading our data into their space)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
        return True
    gLogger.warn(f"Ignoring the proxy {path}: it is not a regular file of uid {os.getuid()} (planted by another user?)")
    return False


def getProxyLocation() -> str | bool:
    """The user's proxy file: ``$X509_USER_PROXY`` else ``/tmp/x509up_u<uid>`` (only a regular file
    of this user, not a link); False when there is none."""
    explicit = os.environ.get("X509_USER_PROXY")
    if explicit and os.path.isfile(explicit):
        return explicit
    default = DEFAULT_PROXY_TEMPLATE.format(uid=os.getuid())
    return default if os.path.lexists(default) and _ownRegularFile(default) else False


def _existingPair(cert: str, key: str) -> tuple[str, str] | bool:
    return (cert, key) if os.path.isfile(cert) and os.path.isfile(key) else False


def getHostCertificateAndKeyLocation(specificLocation: str | None = None) -> tuple[str, str] | bool:
    """(cert, key) of the host: ``/DIRAC/Security/CertFile`` and ``KeyFile``, else /etc/grid-security.

    ``specificLocation`` names a folder holding hostcert.pem / hostkey.pem, tried first.
    """
    if specificLocation:
        pair = _existingPair(
            os.path.join(specificLocation, "hostcert.pem"), os.path.join(specificLocation, "hostkey.pem")
        )
        if pair:
            return pair
    cert = gConfig.getValue(f"{SECURITY_SECTION}/CertFile", DEFAULT_HOST_CERT)
    key = gConfig.getValue(f"{SECURITY_SECTION}/KeyFile", DEFAULT_HOST_KEY)
    return _existingPair(cert, key)


def getCertificateAndKeyLocation() -> tuple[str, str] | bool:
    """(cert, key) of the user: ``$X509_USER_CERT`` / ``$X509_USER_KEY``, else ~/.globus/usercert.pem / userkey.pem."""
    globus = os.path.join(os.path.expanduser("~"), ".globus")
    cert = os.environ.get("X509_USER_CERT") or os.path.join(globus, "usercert.pem")
    key = os.environ.get("X509_USER_KEY") or os.path.join(globus, "userkey.pem")
    return _existingPair(cert, key)


def getCAsLocation() -> str | bool:
    """The trusted CA directory: ``$X509_CERT_DIR``, else ``/DIRAC/Security/CALocation``, else
    /etc/grid-security/certificates; the first that is an existing folder, False if none is."""
    for candidate in (
        os.environ.get("X509_CERT_DIR"),
        gConfig.getValue(f"{SECURITY_SECTION}/CALocation", ""),
        DEFAULT_CA_DIR,
    ):
        if candidate and os.path.isdir(candidate):
            return candidate
    return False

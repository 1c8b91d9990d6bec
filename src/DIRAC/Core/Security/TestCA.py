"""A throw-away certificate authority FOR TESTS AND DEMOS, NOT FOR PRODUCTION.

Layout made under ``folder``::

    ca/cacert.pem, ca/cakey.pem            the CA itself (key 0600, never in certificates/)
    certificates/<subject_hash>.0          the CA certificate, found by OpenSSL ``CApath``
    certificates/<CA name>.pem             the same certificate under a readable name
    hosts/<name>/hostcert.pem, hostkey.pem server + client certificate (SAN localhost, 127.0.0.1)
    users/<name>/usercert.pem, userkey.pem user certificate, able to sign RFC 3820 proxies

Keys are unencrypted and mode 0600. A second ``TestCA`` in another folder is a CA that
nobody trusts, handy to test refusals; ``expired=True`` makes certificates that are no
longer valid. This module raises ``TestCAError`` on failure: it is a test tool whose callers
want a loud stop, not a service API.
"""

from __future__ import annotations

import datetime
import os
import re

from M2Crypto import X509

from DIRAC.Core.Security.X509Certificate import (
    buildCertificate,
    dnToName,
    nameToDN,
    newKey,
    utcNow,
)
from DIRAC.Core.Utilities.PrivateFile import writePrivateFile

DEFAULT_BASE_DN = "/O=Grid/OU=DIRAC-Test"
DEFAULT_CA_NAME = "DIRAC Test CA"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
_BACKDATE = datetime.timedelta(minutes=5)


class TestCAError(RuntimeError):
    """The test CA could not make what was asked (bad name, unwritable folder, ...)."""

    __test__ = False  # not a pytest test class


class TestCA:
    """Creates a CA and host / user certificates signed by it in ``folder``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        folder: str,
        caName: str = DEFAULT_CA_NAME,
        baseDN: str = DEFAULT_BASE_DN,
        validityDays: float = 365,
        keyBits: int = 2048,
    ):
        self.folder = os.path.abspath(folder)
        self.caName = caName
        self.baseDN = baseDN.rstrip("/")
        self.validityDays = validityDays
        self.keyBits = keyBits
        self.caDir = os.path.join(self.folder, "certificates")
        self.caCertPath = os.path.join(self.folder, "ca", "cacert.pem")
        self.caKeyPath = os.path.join(self.folder, "ca", "cakey.pem")
        self._caCert: X509.X509 | None = None
        self._caKey = None

    # the CA ---------------------------------------------------------------------------------
    @property
    def caDN(self) -> str:
        """The CA's subject DN."""
        return f"{self.baseDN}/CN={self.caName}"

    def createCA(self) -> tuple[str, str]:
        """Create the CA (or reuse the one already in the folder); returns (certPath, keyPath)."""
        if self._caCert is not None:
            return self.caCertPath, self.caKeyPath
        if os.path.exists(self.caCertPath) and os.path.exists(self.caKeyPath):
            return self._loadCA()
        try:
            key = newKey(self.keyBits)
            now = utcNow()
            cert = buildCertificate(
                dnToName(self.caDN),
                key,
                key,
                now - _BACKDATE,
                now + datetime.timedelta(days=max(self.validityDays, 1) * 2),
                extensions=[("basicConstraints", "CA:TRUE", True), ("keyUsage", "keyCertSign,cRLSign", True)],
            )
            os.makedirs(os.path.dirname(self.caCertPath), exist_ok=True)
            writePrivateFile(self.caKeyPath, key.as_pem(cipher=None))
            self._writePublic(self.caCertPath, cert.as_pem())
            self._installInCADir(cert)
        except (OSError, ValueError, X509.X509Error) as exc:
            raise TestCAError(f"Cannot create the test CA in {self.folder}: {exc}") from exc
        self._caCert, self._caKey = cert, key
        return self.caCertPath, self.caKeyPath

    def _loadCA(self) -> tuple[str, str]:
        from M2Crypto import EVP

        try:
            self._caCert = X509.load_cert(self.caCertPath)
            self._caKey = EVP.load_key(self.caKeyPath)
        except (OSError, X509.X509Error, EVP.EVPError) as exc:
            raise TestCAError(f"Cannot load the test CA from {self.folder}: {exc}") from exc
        self._installInCADir(self._caCert)
        return self.caCertPath, self.caKeyPath

    def _installInCADir(self, cert: X509.X509) -> None:
        """Put the CA certificate in certificates/ as <hash>.0 (OpenSSL 3 CApath) and <name>.pem."""
        os.makedirs(self.caDir, exist_ok=True)
        pem = cert.as_pem()
        self._writePublic(os.path.join(self.caDir, f"{cert.get_subject().as_hash():08x}.0"), pem)
        self._writePublic(os.path.join(self.caDir, re.sub(r"[^A-Za-z0-9._-]", "_", self.caName) + ".pem"), pem)

    @staticmethod
    def _writePublic(path: str, data: bytes) -> None:
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o644)

    # issued certificates ----------------------------------------------------------------------
    def _validity(self, validityDays: float | None, expired: bool) -> tuple[datetime.datetime, datetime.datetime]:
        now = utcNow()
        if expired:
            return now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
        days = self.validityDays if validityDays is None else validityDays
        return now - _BACKDATE, now + datetime.timedelta(days=days)

    def _issue(self, kind: str, name: str, dn: str, extensions: list, validityDays, expired) -> tuple[str, str]:
        if not _SAFE_NAME.match(name or ""):
            raise TestCAError(f"{kind} name {name!r} is not a simple name (letters, digits, . _ @ -)")
        self.createCA()
        folder = os.path.join(self.folder, f"{kind}s", name)
        certPath = os.path.join(folder, f"{kind}cert.pem")
        keyPath = os.path.join(folder, f"{kind}key.pem")
        notBefore, notAfter = self._validity(validityDays, expired)
        try:
            key = newKey(self.keyBits)
            cert = buildCertificate(
                dnToName(dn), key, self._caKey, notBefore, notAfter, issuerCert=self._caCert, extensions=extensions
            )
            os.makedirs(folder, exist_ok=True)
            writePrivateFile(keyPath, key.as_pem(cipher=None))
            self._writePublic(certPath, cert.as_pem())
        except (OSError, ValueError, X509.X509Error) as exc:
            raise TestCAError(f"Cannot create the {kind} certificate {name!r}: {exc}") from exc
        return certPath, keyPath

    def createHost(
        self, name: str, validityDays: float | None = None, expired: bool = False, altNames: list[str] = ()
    ) -> tuple[str, str]:
        """A host certificate (serverAuth + clientAuth, SAN localhost, 127.0.0.1, ``name``); (certPath, keyPath)."""
        sans = ["DNS:localhost", "IP:127.0.0.1", f"DNS:{name}", *(f"DNS:{alt}" for alt in altNames)]
        extensions = [
            ("basicConstraints", "CA:FALSE", True),
            ("keyUsage", "digitalSignature,keyEncipherment", True),
            ("extendedKeyUsage", "serverAuth,clientAuth", False),
            ("subjectAltName", ",".join(dict.fromkeys(sans)), False),
        ]
        return self._issue("host", name, self.hostDN(name), extensions, validityDays, expired)

    def createUser(
        self, name: str, dnSuffix: str = "", validityDays: float | None = None, expired: bool = False
    ) -> tuple[str, str, str]:
        """A user certificate able to sign proxies; (certPath, keyPath, DN).

        The DN is ``<baseDN>/CN=<name><dnSuffix>``; ``dnSuffix`` adds RDNs such as ``/emailAddress=a@b``.
        """
        dn = self.userDN(name, dnSuffix)
        extensions = [
            ("basicConstraints", "CA:FALSE", True),
            ("keyUsage", "digitalSignature,keyEncipherment,dataEncipherment", True),
            ("extendedKeyUsage", "clientAuth", False),
        ]
        certPath, keyPath = self._issue("user", name, dn, extensions, validityDays, expired)
        cert = X509.load_cert(certPath)  # keep a reference: the name points into the certificate
        return certPath, keyPath, nameToDN(cert.get_subject())

    def hostDN(self, name: str) -> str:
        """The DN a host certificate made by ``createHost(name)`` carries."""
        return f"{self.baseDN}/CN={name}"

    def userDN(self, name: str, dnSuffix: str = "") -> str:
        """The DN a user certificate made by ``createUser(name, dnSuffix)`` carries."""
        return f"{self.baseDN}/CN={name}{dnSuffix}"

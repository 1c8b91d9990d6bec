"""``X509Chain``: a certificate chain (leaf first) with, optionally, the leaf's private key.

It loads user certificates, RFC 3820 proxies (certificate + key + chain in one PEM file)
and the DER chain a TLS server verified, tells who the chain belongs to (the identity
DN: the first certificate from the leaf upward without proxyCertInfo) and which DIRAC
group it carries (extension 1.2.42.42), and signs new proxies, including proxies of
proxies. Every public method returns S_OK / S_ERROR and never raises.

Delegation rules, checked whenever the identity or the group is asked for:

* The DIRAC group is the one of the proxy nearest the user certificate (none there:
  the user's default group). A later proxy, signed by whoever holds a delegated
  proxy, may repeat that group or carry none; a chain where it claims another
  group, or adds one, is refused with the reason: a delegate cannot change group.
* Proxies must be RFC 3820 ``inheritAll`` or Globus ``limited`` proxies (a chain
  with a limited proxy is a limited proxy); ``independent`` proxies and unknown
  policy languages carry none of the user's rights and are refused.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable

from M2Crypto import EVP, X509

from DIRAC.ConfigurationSystem.Client.Helpers import Registry
from DIRAC.Core.Security.X509Certificate import (
    DIRAC_GROUP_OID,
    PROXY_INHERIT_ALL_OID,
    PROXY_LIMITED_OID,
    ExpiryMixin,
    X509Certificate,
    buildCertificate,
    extendName,
    newKey,
    randomSerial,
    splitPEMCertificates,
    utcNow,
)
from DIRAC.Core.Utilities.PrivateFile import writePrivateFile
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

DEFAULT_PROXY_STRENGTH = 2048
# A proxy starts a little in the past so that clocks slightly behind ours accept it at once.
PROXY_BACKDATE = datetime.timedelta(minutes=5)
PROXY_EXTENSIONS = [
    ("proxyCertInfo", "language:id-ppl-inheritAll", True),  # 1.3.6.1.5.5.7.21.1, must be critical
    ("keyUsage", "digitalSignature,keyEncipherment", True),
]
HOSTS_GROUP = "hosts"


def _readFile(path: str, what: str) -> dict:
    try:
        with open(path, "rb") as handle:
            return S_OK(handle.read())
    except OSError as exc:
        return S_ERROR(f"Cannot read {what} file {path}: {exc.strerror}")


def _needsCerts(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: X509Chain, *args, **kwargs) -> dict:
        if not self._certs:
            return S_ERROR("No certificate chain loaded")
        return method(self, *args, **kwargs)

    return wrapper


class X509Chain(ExpiryMixin):
    """A certificate chain, leaf first, and optionally the leaf's private key."""

    def __init__(self, certList: list[X509Certificate] | None = None, keyObj: EVP.PKey | None = None):
        self._certs: list[X509Certificate] = list(certList or [])
        self._key: EVP.PKey | None = keyObj

    # loading ------------------------------------------------------------------------------
    def loadChainFromString(self, pemData: bytes | str) -> dict:
        """Load every certificate of a PEM text (leaf first); a key in the text is ignored."""
        blocks = splitPEMCertificates(pemData)
        if not blocks:
            return S_ERROR("No certificate found in the PEM data")
        certs = []
        for position, block in enumerate(blocks):
            cert = X509Certificate()
            result = cert.loadFromString(block)
            if not result["OK"]:
                return S_ERROR(f"Certificate {position} of the chain: {result['Message']}")
            certs.append(cert)
        self._certs = certs
        return S_OK()

    def loadChainFromFile(self, chainLocation: str) -> dict:
        """Load the certificates of a PEM file."""
        result = _readFile(chainLocation, "certificate")
        if not result["OK"]:
            return result
        result = self.loadChainFromString(result["Value"])
        return result if result["OK"] else S_ERROR(f"{chainLocation}: {result['Message']}")

    def loadChainFromDERList(self, derList: list[bytes]) -> dict:
        """Load a chain given as DER certificates, leaf first (as ``SSLSocket.get_verified_chain()`` gives)."""
        if not derList:
            return S_ERROR("Empty certificate list")
        certs = []
        for position, der in enumerate(derList):
            try:
                certs.append(X509Certificate.fromDER(bytes(der)))
            except (X509.X509Error, ValueError, TypeError) as exc:
                return S_ERROR(f"Certificate {position} of the DER list is not valid: {exc}")
        self._certs = certs
        return S_OK()

    @classmethod
    def fromDERList(cls, derList: list[bytes]) -> dict:
        """S_OK(X509Chain) built from DER certificates, leaf first, without a key.

        On a TLS server: ``[c.public_bytes(_ssl.ENCODING_DER) for c in sslobj.get_verified_chain()]``.
        """
        chain = cls()
        result = chain.loadChainFromDERList(derList)
        return S_OK(chain) if result["OK"] else result

    def loadKeyFromString(self, pemData: bytes | str, password: str | None = None) -> dict:
        """Load the private key of the leaf certificate from PEM (encrypted keys need ``password``)."""
        data = pemData.encode() if isinstance(pemData, str) else pemData
        secret = (password or "").encode()
        try:
            key = EVP.load_key_string(data, callback=lambda *args: secret)
        except (EVP.EVPError, ValueError) as exc:
            hint = "" if password else " (is it encrypted? give the password)"
            return S_ERROR(f"Cannot load the private key{hint}: {exc}")
        if self._certs and self._certs[0].x509.get_pubkey().as_der() != key.as_der():
            return S_ERROR("The private key does not match the first certificate of the chain")
        self._key = key
        return S_OK()

    def loadKeyFromFile(self, keyLocation: str, password: str | None = None) -> dict:
        """Load the leaf's private key from a PEM file."""
        result = _readFile(keyLocation, "key")
        if not result["OK"]:
            return result
        result = self.loadKeyFromString(result["Value"], password)
        return result if result["OK"] else S_ERROR(f"{keyLocation}: {result['Message']}")

    def loadProxyFromString(self, pemData: bytes | str) -> dict:
        """Load a proxy: certificate, key and chain in one PEM text."""
        result = self.loadChainFromString(pemData)
        if not result["OK"]:
            return result
        return self.loadKeyFromString(pemData)

    def loadProxyFromFile(self, proxyLocation: str) -> dict:
        """Load a proxy file (certificate, key, chain)."""
        result = _readFile(proxyLocation, "proxy")
        if not result["OK"]:
            return result
        result = self.loadProxyFromString(result["Value"])
        return result if result["OK"] else S_ERROR(f"{proxyLocation}: {result['Message']}")

    # inspection ---------------------------------------------------------------------------
    @_needsCerts
    def getNumCertsInChain(self) -> dict:
        """S_OK(number of certificates)."""
        return S_OK(len(self._certs))

    @_needsCerts
    def getCertList(self) -> dict:
        """S_OK(list of X509Certificate, leaf first)."""
        return S_OK(list(self._certs))

    @_needsCerts
    def getCertInChain(self, certPos: int = 0) -> dict:
        """S_OK(X509Certificate at ``certPos``; 0 is the leaf, negative counts from the end)."""
        try:
            return S_OK(self._certs[certPos])
        except (IndexError, TypeError):
            return S_ERROR(f"No certificate at position {certPos!r} in a chain of {len(self._certs)}")

    def _proxyFlags(self) -> dict:
        flags = []
        for cert in self._certs:
            result = cert.isProxy()
            if not result["OK"]:
                return result
            flags.append(result["Value"])
        return S_OK(flags)

    def _identityPosition(self) -> dict:
        """S_OK(position of the identity certificate) once every proxy before it has an accepted policy."""
        result = self._proxyFlags()
        if not result["OK"]:
            return result
        for position, isProxy in enumerate(result["Value"]):
            if not isProxy:
                return S_OK(position)
            language = self._certs[position].getProxyPolicyLanguage()
            if not language["OK"]:
                return S_ERROR(f"Proxy certificate {position} of the chain: {language['Message']}")
            if language["Value"] not in (PROXY_INHERIT_ALL_OID, PROXY_LIMITED_OID):
                return S_ERROR(
                    f"Proxy certificate {position} of the chain has policy language {language['Value']}: only "
                    "inheritAll and limited proxies carry the user's rights; this chain is refused"
                )
        return S_ERROR("The chain holds only proxy certificates: no identity certificate")

    @_needsCerts
    def isProxy(self) -> dict:
        """S_OK(True when the leaf is an RFC 3820 proxy)."""
        return self._certs[0].isProxy()

    @_needsCerts
    def getIdentityDN(self) -> dict:
        """S_OK(subject of the first certificate, from the leaf upward, that is not a proxy)."""
        result = self._identityPosition()
        return result if not result["OK"] else self._certs[result["Value"]].getSubjectDN()

    @_needsCerts
    def getIssuerCert(self) -> dict:
        """S_OK(X509Certificate): the identity certificate for a proxy, the last certificate otherwise."""
        result = self.isProxy()
        if not result["OK"]:
            return result
        if not result["Value"]:
            return S_OK(self._certs[-1])
        result = self._identityPosition()
        return result if not result["OK"] else S_OK(self._certs[result["Value"]])

    @_needsCerts
    def isLimitedProxy(self) -> dict:
        """S_OK(True when a proxy of the chain is a limited proxy: everything signed below it is limited too)."""
        result = self._identityPosition()
        if not result["OK"]:
            return result
        languages = [self._certs[position].getProxyPolicyLanguage()["Value"] for position in range(result["Value"])]
        return S_OK(PROXY_LIMITED_OID in languages)

    @_needsCerts
    def getDIRACGroup(self, ignoreDefault: bool = True) -> dict:
        """S_OK(group of the proxy nearest the user certificate, extension 1.2.42.42; None if it has none).

        S_ERROR when a later proxy claims another group or adds one (see the module's
        delegation rules). With ``ignoreDefault=False`` and no group in the chain, the
        identity's default group from the registry is returned instead.
        """
        result = self._identityPosition()
        if not result["OK"]:
            return result
        identityPosition = result["Value"]
        chainGroup = None
        for position in range(identityPosition - 1, -1, -1):  # from the user certificate toward the leaf
            group = self._certs[position].getDIRACGroup()
            if not group["OK"]:
                return S_ERROR(f"Proxy certificate {position} of the chain: {group['Message']}")
            if position == identityPosition - 1:
                chainGroup = group["Value"]
            elif group["Value"] is not None and group["Value"] != chainGroup:
                return S_ERROR(
                    f"Proxy certificate {position} of the chain claims DIRAC group {group['Value']!r}, but the "
                    f"proxy nearest the user certificate set {chainGroup or 'no group (the default group)'}: "
                    "a delegated proxy cannot change group"
                )
        if chainGroup is not None or ignoreDefault:
            return S_OK(chainGroup)
        identity = self.getIdentityDN()
        if not identity["OK"]:
            return identity
        result = Registry.findDefaultGroupForDN(identity["Value"])
        return S_OK(result["Value"] if result["OK"] else None)

    @_needsCerts
    def getNotAfterDate(self) -> dict:
        """S_OK(the earliest end of validity in the chain, aware UTC datetime)."""
        dates = []
        for cert in self._certs:
            result = cert.getNotAfterDate()
            if not result["OK"]:
                return result
            dates.append(result["Value"])
        return S_OK(min(dates))

    def isValidProxy(self) -> dict:
        """S_OK(True) for an unexpired proxy with its key; S_ERROR saying what is wrong otherwise."""
        result = self.isProxy()
        if not result["OK"]:
            return result
        if not result["Value"]:
            return S_ERROR("The chain is not a proxy")
        if self._key is None:
            return S_ERROR("The proxy has no private key")
        result = self.hasExpired()
        if not result["OK"]:
            return result
        return S_ERROR("The proxy has expired") if result["Value"] else S_OK(True)

    @_needsCerts
    def hash(self) -> dict:
        """S_OK(SHA-1 hex of the chain's certificates), a cache key for this credential."""
        digest = hashlib.sha1(usedforsecurity=False)
        for cert in self._certs:
            digest.update(cert.asDER())
        return S_OK(digest.hexdigest())

    def getPKeyObj(self) -> dict:
        """S_OK(M2Crypto EVP.PKey of the leaf)."""
        return S_OK(self._key) if self._key is not None else S_ERROR("No private key loaded")

    # credentials ---------------------------------------------------------------------------
    @_needsCerts
    def getCredentials(self, ignoreDefault: bool = False, withRegistryInfo: bool = True) -> dict:
        """S_OK(dict) describing who holds this chain.

        Keys: ``subject``, ``issuer`` (of the leaf), ``identity`` and ``DN`` (identity DN),
        ``isProxy``, ``isLimitedProxy``, ``group`` (proxy group; the registry
        default when ``ignoreDefault`` is False; ``hosts`` for a host certificate),
        ``secondsLeft``, ``notAfter``. With ``withRegistryInfo``: ``validDN``, ``validGroup``,
        ``username`` or ``hostname``, ``groupProperties`` (host properties for hosts).
        """
        leaf = self._certs[0]
        values = {}
        for key, call in (
            ("subject", leaf.getSubjectDN),
            ("issuer", leaf.getIssuerDN),
            ("identity", self.getIdentityDN),
            ("isProxy", self.isProxy),
            ("secondsLeft", self.getRemainingSecs),
            ("notAfter", self.getNotAfterDate),
            ("group", self.getDIRACGroup),
            ("isLimitedProxy", self.isLimitedProxy),
        ):
            result = call()
            if not result["OK"]:
                return result
            values[key] = result["Value"]
        credDict = {**values, "DN": values["identity"]}
        if credDict["group"] is None:
            del credDict["group"]
        if withRegistryInfo:
            self._addRegistryInfo(credDict, ignoreDefault)
        elif not ignoreDefault and "group" not in credDict:
            default = Registry.findDefaultGroupForDN(credDict["identity"])
            if default["OK"]:
                credDict["group"] = default["Value"]
        return S_OK(credDict)

    @staticmethod
    def _addRegistryInfo(credDict: dict, ignoreDefault: bool) -> None:
        credDict["validDN"] = False
        credDict["validGroup"] = False
        identity = credDict["identity"]
        if not credDict["isProxy"]:
            host = Registry.getHostnameForDN(identity)
            if host["OK"]:
                credDict.update(
                    group=HOSTS_GROUP,
                    hostname=host["Value"],
                    validDN=True,
                    validGroup=True,
                    groupProperties=Registry.getPropertiesForHost(host["Value"], []),
                )
                return
        user = Registry.getUsernameForDN(identity)
        if not user["OK"]:
            return
        credDict["username"] = user["Value"]
        credDict["validDN"] = True
        if "group" not in credDict and not ignoreDefault:
            default = Registry.findDefaultGroupForUser(user["Value"])
            if default["OK"]:
                credDict["group"] = default["Value"]
        if "group" in credDict:
            groups = Registry.getGroupsForUser(user["Value"])
            credDict["validGroup"] = groups["OK"] and credDict["group"] in groups["Value"]
            credDict["groupProperties"] = Registry.getPropertiesForGroup(credDict["group"], [])

    # output --------------------------------------------------------------------------------
    @_needsCerts
    def dumpChainToString(self) -> dict:
        """S_OK(PEM of every certificate, leaf first, no key)."""
        return S_OK("".join(cert.asPem() for cert in self._certs))

    @_needsCerts
    def dumpAllToString(self) -> dict:
        """S_OK(PEM: leaf certificate, its key when loaded, then the rest of the chain)."""
        parts = [self._certs[0].asPem()]
        if self._key is not None:
            parts.append(self._key.as_pem(cipher=None).decode())
        parts.extend(cert.asPem() for cert in self._certs[1:])
        return S_OK("".join(parts))

    def getPEMAsString(self) -> dict:
        """Same as ``dumpAllToString``."""
        return self.dumpAllToString()

    def dumpAllToFile(self, filename: str | None = None) -> dict:
        """Write ``dumpAllToString`` to ``filename`` (a new temporary file if None) with mode 0600; S_OK(path)."""
        result = self.dumpAllToString()
        if not result["OK"]:
            return result
        return _writeSecretFile(filename, result["Value"])

    # proxy generation ----------------------------------------------------------------------
    @_needsCerts
    def generateProxyToString(
        self, lifetime: int, diracGroup: str | None = None, strength: int = DEFAULT_PROXY_STRENGTH
    ) -> dict:
        """S_OK(PEM of a new RFC 3820 proxy signed by this chain's leaf: cert, key, chain).

        ``lifetime`` is in seconds; the proxy never outlives its signer. ``diracGroup`` goes in
        the 1.2.42.42 extension; when None, a group already in this chain is kept.
        """
        result = self._newProxy(lifetime, diracGroup, strength)
        if not result["OK"]:
            return result
        return result["Value"].dumpAllToString()

    def generateProxyToFile(
        self,
        filePath: str | None,
        lifetime: int,
        diracGroup: str | None = None,
        strength: int = DEFAULT_PROXY_STRENGTH,
    ) -> dict:
        """Write a new proxy (see ``generateProxyToString``) to ``filePath`` with mode 0600; S_OK(path)."""
        result = self.generateProxyToString(lifetime, diracGroup, strength)
        if not result["OK"]:
            return result
        return _writeSecretFile(filePath, result["Value"])

    def generateChainFromProxy(
        self, lifetime: int, diracGroup: str | None = None, strength: int = DEFAULT_PROXY_STRENGTH
    ) -> dict:
        """S_OK(X509Chain) of a new proxy, in memory."""
        return self._newProxy(lifetime, diracGroup, strength)

    def _newProxy(self, lifetime: int, diracGroup: str | None, strength: int) -> dict:
        if self._key is None:
            return S_ERROR("Cannot sign a proxy: no private key loaded for the chain")
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
            return S_ERROR(f"Proxy lifetime must be a positive number of seconds, not {lifetime!r}")
        if diracGroup is not None and (not isinstance(diracGroup, str) or not diracGroup.isprintable()):
            return S_ERROR(f"DIRAC group {diracGroup!r} is not a printable name")
        current = self.getDIRACGroup() if self._certs else S_OK(None)
        if not current["OK"]:
            return current
        isProxy = self.isProxy()
        if not isProxy["OK"]:
            return isProxy
        if isProxy["Value"] and diracGroup is not None and diracGroup != current["Value"]:
            return S_ERROR(
                f"Cannot sign a proxy for group {diracGroup!r} from a proxy of "
                f"{current['Value'] or 'no group (the default group)'}: a delegated proxy cannot change group"
            )
        if diracGroup is None:
            diracGroup = current["Value"]
        expired = self.hasExpired()
        if not expired["OK"]:
            return expired
        if expired["Value"]:
            return S_ERROR("Cannot sign a proxy: the signing chain has expired")
        signer = self._certs[0].x509
        limit = self.getNotAfterDate()["Value"]
        now = utcNow()
        notBefore = max(now - PROXY_BACKDATE, signer.get_not_before().get_datetime())
        notAfter = min(now + datetime.timedelta(seconds=lifetime), limit)
        extensions = list(PROXY_EXTENSIONS)
        if diracGroup:
            extensions.append((DIRAC_GROUP_OID, f"ASN1:IA5STRING:{diracGroup}", False))
        serial = randomSerial()
        try:
            key = newKey(strength)
            cert = buildCertificate(
                extendName(signer.get_subject(), "CN", str(serial)),
                key,
                self._key,
                notBefore,
                notAfter,
                issuerCert=signer,
                extensions=extensions,
                serial=serial,
            )
        except (X509.X509Error, EVP.EVPError, ValueError) as exc:
            return S_ERROR(f"Cannot sign the proxy: {exc}")
        return S_OK(X509Chain([X509Certificate(cert), *self._certs], key))

    def __repr__(self) -> str:
        identity = self.getIdentityDN() if self._certs else {"OK": False}
        return f"<X509Chain {len(self._certs)} certs {identity.get('Value', '')}>"


def _writeSecretFile(path: str | None, text: str) -> dict:
    try:
        if not path:
            fd, path = tempfile.mkstemp(prefix="x509", suffix=".pem")
            os.close(fd)
        writePrivateFile(path, text, "proxy file")
    except OSError as exc:
        return S_ERROR(f"Cannot write {path}: {exc.strerror or exc}")
    return S_OK(path)

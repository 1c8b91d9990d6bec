"""One X.509 certificate (M2Crypto) with DIRAC's accessors and the shared certificate builder.

DNs are in DIRAC's slash form: ``/O=Grid/OU=Test/CN=name``. Dates are timezone-aware UTC.
``buildCertificate`` is the one place where certificates are assembled and signed; the test
CA and the proxy generator both use it.

Extensions are read with the ``cryptography`` package (its X.509 parser and declarative
ASN.1 decoder): M2Crypto names extensions through OpenSSL's object table, which does not
know DIRAC's group extension (1.2.42.42), and cryptography refuses malformed or duplicated
extensions instead of guessing.
"""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Callable

from cryptography import x509 as cx509
from cryptography.hazmat import asn1
from M2Crypto import ASN1, EVP, RSA, X509, m2

# writePrivateFile (PrivateFile's) stays importable from here, where it used to live: the tests take it from here.
from DIRAC.Core.Utilities.PrivateFile import writePrivateFile as writePrivateFile
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

PROXY_CERT_INFO_OID = "1.3.6.1.5.5.7.1.14"
PROXY_INHERIT_ALL_OID = "1.3.6.1.5.5.7.21.1"
#: RFC 3820 "independent" proxies carry none of the issuer's rights.
PROXY_INDEPENDENT_OID = "1.3.6.1.5.5.7.21.2"
#: Globus "limited" proxies: the user's rights, minus starting jobs (DIRAC's isLimitedProxy).
PROXY_LIMITED_OID = "1.3.6.1.4.1.3536.1.1.1.9"
DIRAC_GROUP_OID = "1.2.42.42"

_MBSTRING_UTF8 = ASN1.MBSTRING_FLAG  # OpenSSL's MBSTRING_UTF8 is the bare flag
_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def utcNow() -> datetime.datetime:
    """The current time, timezone-aware UTC, without microseconds."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def nameToDN(name: X509.X509_Name) -> str:
    """DIRAC's slash form of an X.509 name."""
    return str(name)


def dnToName(dn: str) -> X509.X509_Name:
    """An X.509 name from ``/K=V/K=V``; ValueError naming the DN when malformed."""
    if not isinstance(dn, str) or not dn.startswith("/"):
        raise ValueError(f"DN {dn!r} must be in slash form, e.g. /O=Grid/CN=name")
    name = X509.X509_Name()
    for part in dn.split("/")[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"DN {dn!r}: component {part!r} is not KEY=VALUE")
        _addEntry(name, key, value)
    return name


def _addEntry(name: X509.X509_Name, field: str, value: str) -> None:
    # ASCII values keep OpenSSL's usual string types; others are stored as UTF8String.
    kind = ASN1.MBSTRING_ASC if value.isascii() else _MBSTRING_UTF8
    name.add_entry_by_txt(field=field, type=kind, entry=value, len=-1, loc=-1, set=0)


def extendName(name: X509.X509_Name, field: str, value: str) -> X509.X509_Name:
    """A copy of ``name`` (entries copied exactly, encodings kept) with ``field=value`` appended."""
    copy = X509.X509_Name()
    for entry in name:
        m2.x509_name_add_entry(copy._ptr(), entry._ptr(), -1, 0)
    _addEntry(copy, field, value)
    return copy


def splitPEMCertificates(pem: bytes | str) -> list[bytes]:
    """Every CERTIFICATE block of a PEM text, in order."""
    data = pem.encode() if isinstance(pem, str) else pem
    return _PEM_CERT_RE.findall(data)


def newKey(bits: int = 2048) -> EVP.PKey:
    """A fresh RSA key pair."""
    rsa = RSA.gen_key(bits, 65537, callback=lambda *args: None)
    pkey = EVP.PKey()
    pkey.assign_rsa(rsa)
    return pkey


def randomSerial() -> int:
    """A random positive serial number (63 bits)."""
    return random.SystemRandom().randint(1, 2**63 - 1)


def _asn1Time(when: datetime.datetime) -> ASN1.ASN1_TIME:
    stamp = ASN1.ASN1_TIME()
    stamp.set_datetime(when)
    return stamp


def _subjectKeyId(cert: X509.X509) -> bytes | None:
    """The key identifier of a certificate's subjectKeyIdentifier extension, if any."""
    try:
        extension = _parsed(cert).extensions.get_extension_for_class(cx509.SubjectKeyIdentifier)
    except cx509.ExtensionNotFound:
        return None
    return extension.value.digest


def _parsed(cert: X509.X509) -> cx509.Certificate:
    """The same certificate parsed by ``cryptography`` (ValueError when it cannot be)."""
    return cx509.load_der_x509_certificate(cert.as_der())


@asn1.sequence
class _ProxyPolicy:
    # RFC 3820: ProxyPolicy ::= SEQUENCE { policyLanguage OBJECT IDENTIFIER, policy OCTET STRING OPTIONAL }
    policyLanguage: cx509.ObjectIdentifier
    policy: bytes | None


@asn1.sequence
class _ProxyCertInfo:
    # RFC 3820: ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL, proxyPolicy ProxyPolicy }
    pathLenConstraint: int | None
    proxyPolicy: _ProxyPolicy


def decodeProxyPolicyLanguage(extensionValue: bytes) -> str:
    """The dotted policy language of a proxyCertInfo extension value; ValueError when malformed."""
    return asn1.decode_der(_ProxyCertInfo, extensionValue).proxyPolicy.policyLanguage.dotted_string


def decodeDIRACGroup(extensionValue: bytes) -> str:
    """The group name of a DIRAC group extension value (IA5String, or UTF8String); ValueError when malformed."""
    try:
        return asn1.decode_der(asn1.IA5String, extensionValue).as_str()
    except ValueError:
        return asn1.decode_der(str, extensionValue)


def buildCertificate(
    subject: X509.X509_Name,
    publicKey: EVP.PKey,
    signingKey: EVP.PKey,
    notBefore: datetime.datetime,
    notAfter: datetime.datetime,
    issuerCert: X509.X509 | None = None,
    extensions: list[tuple[str, str, bool]] = (),
    serial: int | None = None,
) -> X509.X509:
    """Assemble and sign (SHA-256) a v3 certificate; self-signed when ``issuerCert`` is None.

    ``extensions`` are ``(name or dotted OID, OpenSSL config value, critical)``. Subject and
    authority key identifiers are always added, so strict verifiers accept the chain.
    Raises M2Crypto / ValueError exceptions: callers turn them into S_ERROR.
    """
    cert = X509.X509()
    cert.set_version(2)
    cert.set_serial_number(serial or randomSerial())
    cert.set_subject(subject)
    cert.set_issuer(issuerCert.get_subject() if issuerCert is not None else subject)
    cert.set_pubkey(publicKey)
    cert.set_not_before(_asn1Time(notBefore))
    cert.set_not_after(_asn1Time(notAfter))
    for name, value, critical in extensions:
        cert.add_ext(X509.new_extension(name, value, critical=int(critical)))
    ownKeyId = publicKey.get_key_identifier()
    cert.add_ext(X509.new_extension("subjectKeyIdentifier", ownKeyId.hex()))
    authorityKeyId = ownKeyId if issuerCert is None else _subjectKeyId(issuerCert)
    if authorityKeyId:
        cert.add_ext(X509.AuthorityKeyIdentifier(authorityKeyId).as_extension())
    cert.sign(signingKey, "sha256")
    return cert


class ExpiryMixin:
    """``getRemainingSecs`` and ``hasExpired`` for anything with ``getNotAfterDate``."""

    def getRemainingSecs(self) -> dict:
        """S_OK(seconds of validity left, 0 when expired)."""
        result = self.getNotAfterDate()
        if not result["OK"]:
            return result
        return S_OK(max(0, int((result["Value"] - utcNow()).total_seconds())))

    def hasExpired(self) -> dict:
        """S_OK(True when the end of validity is past)."""
        result = self.getNotAfterDate()
        return result if not result["OK"] else S_OK(result["Value"] <= utcNow())


class X509Certificate(ExpiryMixin):
    """DIRAC's view of one certificate; every public method returns S_OK / S_ERROR."""

    def __init__(self, x509Obj: X509.X509 | None = None):
        self._cert = x509Obj
        self._extensions: dict[str, tuple[bool, bytes]] | None = None

    # loading -----------------------------------------------------------------------------
    def loadFromString(self, pem: bytes | str) -> dict:
        """Load the first certificate of a PEM text."""
        blocks = splitPEMCertificates(pem)
        if not blocks:
            return S_ERROR("No certificate found in the PEM data")
        try:
            self._cert = X509.load_cert_string(blocks[0])
        except (X509.X509Error, ValueError) as exc:
            return S_ERROR(f"Cannot load certificate: {exc}")
        self._extensions = None
        return S_OK()

    def loadFromFile(self, path: str) -> dict:
        """Load the first certificate of a PEM file."""
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return S_ERROR(f"Cannot read certificate file {path}: {exc.strerror}")
        result = self.loadFromString(data)
        if not result["OK"]:
            return S_ERROR(f"{path}: {result['Message']}")
        return result

    @classmethod
    def fromDER(cls, der: bytes) -> X509Certificate:
        """A certificate from DER bytes (raises X509Error / ValueError when invalid)."""
        return cls(X509.load_cert_der_string(der))

    # accessors ----------------------------------------------------------------------------
    @property
    def x509(self) -> X509.X509 | None:
        """The underlying M2Crypto object (None before loading)."""
        return self._cert

    def _loaded(self) -> dict | None:
        return None if self._cert is not None else S_ERROR("No certificate loaded")

    def _exts(self) -> dict[str, tuple[bool, bytes]]:
        if self._extensions is None:
            extensions = {}
            for extension in _parsed(self._cert).extensions:
                value = extension.value
                raw = value.value if isinstance(value, cx509.UnrecognizedExtension) else value.public_bytes()
                extensions[extension.oid.dotted_string] = (extension.critical, raw)
            self._extensions = extensions
        return self._extensions

    def getSubjectDN(self) -> dict:
        """S_OK(subject DN in slash form)."""
        return self._loaded() or S_OK(nameToDN(self._cert.get_subject()))

    def getIssuerDN(self) -> dict:
        """S_OK(issuer DN in slash form)."""
        return self._loaded() or S_OK(nameToDN(self._cert.get_issuer()))

    def getSerialNumber(self) -> dict:
        """S_OK(serial number as int)."""
        return self._loaded() or S_OK(self._cert.get_serial_number())

    def getNotBeforeDate(self) -> dict:
        """S_OK(start of validity, aware UTC datetime)."""
        return self._loaded() or S_OK(self._cert.get_not_before().get_datetime())

    def getNotAfterDate(self) -> dict:
        """S_OK(end of validity, aware UTC datetime)."""
        return self._loaded() or S_OK(self._cert.get_not_after().get_datetime())

    def getExtensions(self) -> dict:
        """S_OK({oid: (critical, DER value bytes)})."""
        error = self._loaded()
        if error:
            return error
        try:
            return S_OK(dict(self._exts()))
        except ValueError as exc:
            return S_ERROR(f"Cannot read the extensions of the certificate: {exc}")

    def isProxy(self) -> dict:
        """S_OK(True when the certificate carries the RFC 3820 proxyCertInfo extension)."""
        result = self.getExtensions()
        return result if not result["OK"] else S_OK(PROXY_CERT_INFO_OID in result["Value"])

    def _decodedExtension(self, oid: str, decode: Callable[[bytes], str], name: str) -> dict:
        """S_OK(``decode`` of extension ``oid``'s value, None when absent); S_ERROR naming ``name`` if malformed."""
        result = self.getExtensions()
        if not result["OK"]:
            return result
        extension = result["Value"].get(oid)
        if extension is None:
            return S_OK(None)
        try:
            return S_OK(decode(extension[1]))
        except ValueError as exc:
            return S_ERROR(f"Malformed {name} extension: {exc}")

    def getProxyPolicyLanguage(self) -> dict:
        """S_OK(dotted policy language of the proxyCertInfo extension, None when not a proxy)."""
        return self._decodedExtension(PROXY_CERT_INFO_OID, decodeProxyPolicyLanguage, "proxyCertInfo")

    def getDIRACGroup(self) -> dict:
        """S_OK(the DIRAC group of the 1.2.42.42 extension, or None)."""
        return self._decodedExtension(DIRAC_GROUP_OID, decodeDIRACGroup, "DIRAC group")

    def isCA(self) -> dict:
        """S_OK(True for a CA certificate, basicConstraints CA:TRUE)."""
        return self._loaded() or S_OK(bool(self._cert.check_ca()))

    def asPem(self) -> str:
        """The certificate in PEM ('' when none is loaded)."""
        return self._cert.as_pem().decode() if self._cert is not None else ""

    def asDER(self) -> bytes:
        """The certificate in DER (b'' when none is loaded)."""
        return self._cert.as_der() if self._cert is not None else b""

    def __repr__(self) -> str:
        if self._cert is None:
            return "<X509Certificate (empty)>"
        return f"<X509Certificate {nameToDN(self._cert.get_subject())}>"

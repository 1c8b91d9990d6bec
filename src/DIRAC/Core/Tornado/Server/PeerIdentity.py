"""The identity of the client at the other end of a TLS connection.

OpenSSL has already verified the client's chain (CA folder, proxy certificates
allowed) during the handshake. Here we take that verified chain, leaf first, and
read from it the identity DN (the first non-proxy certificate), the DIRAC group
a proxy carries (set by the proxy nearest the user certificate; a chain where a
later proxy claims another group is refused) and whether it is a proxy.

The result is cached on the connection: one parse per TLS connection, not per call.
Because a kept-alive connection may outlive its certificates, the cached identity
remembers the earliest expiry in the chain and stops being valid after it.
"""

from __future__ import annotations

import ssl
import time
from _ssl import ENCODING_DER
from dataclasses import dataclass

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

_CACHE_ATTRIBUTE = "_diracPeerIdentity"


@dataclass(frozen=True)
class PeerIdentity:
    """What the TLS layer proved about the caller."""

    DN: str
    group: str | None
    isProxy: bool
    notAfter: float

    def expired(self) -> bool:
        return time.time() >= self.notAfter


def _sslObject(sslSocket: ssl.SSLSocket):
    # Python 3.11 exposes the verified chain only on the private C object.
    sslObj = getattr(sslSocket, "_sslobj", None)
    if sslObj is None or not hasattr(sslObj, "get_verified_chain"):
        return None
    return sslObj


def identityFromDERChain(ders: list[bytes], notAfter: float) -> dict:
    """S_OK(PeerIdentity) for a verified chain given as DER certificates, leaf first."""
    try:
        from DIRAC.Core.Security.X509Chain import X509Chain
    except ImportError as exc:
        return S_ERROR(DErrno.EIMPERR, f"X.509 support is not available: {exc}")
    try:
        chain = X509Chain.fromDERList(ders)
    except Exception as exc:  # noqa: BLE001 - a broken chain from a peer must not kill the server
        return S_ERROR(DErrno.ECERTREAD, f"cannot read the client certificate chain: {exc}")
    if isinstance(chain, dict):  # tolerate an S_OK(chain) style factory
        if not chain.get("OK"):
            return chain
        chain = chain["Value"]
    # Fail closed: a chain whose identity, proxy policy or group cannot be established (a
    # delegated proxy claiming another group, an independent proxy) is refused with the reason.
    dnResult = chain.getIdentityDN()
    proxyResult = chain.isProxy()
    groupResult = chain.getDIRACGroup()
    for result in (dnResult, proxyResult, groupResult):
        if not result["OK"]:
            return S_ERROR(DErrno.ENOAUTH, f"client certificate chain refused: {result['Message']}")
    isProxy = bool(proxyResult["Value"])
    group = (groupResult["Value"] or None) if isProxy else None
    return S_OK(PeerIdentity(DN=dnResult["Value"], group=group, isProxy=isProxy, notAfter=notAfter))


def getPeerIdentity(sslSocket: object, cacheOn: object | None = None) -> dict:
    """S_OK(PeerIdentity) of the peer of ``sslSocket``; S_ERROR(ENOAUTH, why) when there is none.

    ``cacheOn`` is an object that lives as long as the connection (the tornado stream).
    """
    if cacheOn is not None:
        cached = getattr(cacheOn, _CACHE_ATTRIBUTE, None)
        if cached is not None:
            if cached.expired():
                return S_ERROR(DErrno.ECERTEXPIRED, "the client credentials expired during the connection")
            return S_OK(cached)
    if not isinstance(sslSocket, ssl.SSLSocket):
        return S_ERROR(DErrno.ENOAUTH, "the connection is not TLS")
    sslObj = _sslObject(sslSocket)
    if sslObj is None:
        return S_ERROR(DErrno.ENOAUTH, "this Python cannot give the verified client chain")
    try:
        certificates = sslObj.get_verified_chain() or []
    except (ssl.SSLError, ValueError) as exc:
        return S_ERROR(DErrno.ENOAUTH, f"cannot read the client chain: {exc}")
    if not certificates:
        return S_ERROR(DErrno.ENOAUTH, "the client presented no certificate")
    ders = [cert.public_bytes(ENCODING_DER) for cert in certificates]
    notAfter = min(ssl.cert_time_to_seconds(cert.get_info()["notAfter"]) for cert in certificates)
    result = identityFromDERChain(ders, notAfter)
    if result["OK"] and cacheOn is not None:
        setattr(cacheOn, _CACHE_ATTRIBUTE, result["Value"])
    return result

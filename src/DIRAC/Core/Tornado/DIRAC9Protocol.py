"""DIRAC 9's HTTPS RPC request, both ways: what its client posts and what its server expects.

A DIRAC 9 client posts ``application/x-www-form-urlencoded`` fields to
``https://host:port/<System>/<Service>``:

* ``method``: the exported method's name;
* ``args``: the JSON list of arguments in DIRAC's encoding (``Serialization.DIRAC9``);
* ``extraCredentials`` (optional): JSON, ``"hosts"`` when the client presents a host
  certificate, ``[DN, group]`` when a host acts for a user (delegation; only a host
  with the ``TrustedHost`` property may);
* ``clientVO``, ``clientSetup``: the client's VO and setup (informative here);
* ``rawContent`` (optional, any non-empty value): answer the method's raw bytes
  instead of the JSON of its S_OK/S_ERROR (DIRAC uses it to stream files).

The server answers every call, S_ERROR included, with HTTP 200 and the JSON of the
S_OK/S_ERROR in DIRAC's encoding: a DIRAC 9 client turns any other status into a
generic error and retries. The one exception is a ``rawContent`` call that does not
end in an S_OK of bytes or text: raw bytes cannot carry an error, so it goes back
with an HTTP error status (``RequestDispatcher.rawResult``).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from DIRAC.Core.Tornado import Serialization
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
HOSTS_CREDENTIALS = "hosts"
# method, args, extraCredentials, clientVO, clientSetup, rawContent and some room for later fields.
MAX_FIELDS = 16


def isForm(contentType: str, body: bytes) -> bool:
    """Whether a request is DIRAC 9's form rather than our JSON object.

    The Content-Type tells (``requests`` sets it for form data); without one, a body
    that begins with ``name=`` is a form.
    """
    mediaType = contentType.split(";", 1)[0].strip().lower()
    if mediaType:
        return mediaType == FORM_CONTENT_TYPE
    head = body[:64].split(b"&", 1)[0]
    return b"=" in head and head.split(b"=", 1)[0].isalnum()


def buildForm(method: str, args: tuple | list, extraCredentials: Any = None, vo: str = "", setup: str = "") -> dict:
    """S_OK(form fields, ready for ``requests.post(data=...)``) of one call, as DIRAC 9's client sends it."""
    try:
        fields = {"method": method, "args": Serialization.encode(list(args), Serialization.DIRAC9).decode("utf-8")}
        if extraCredentials:
            fields["extraCredentials"] = Serialization.encode(extraCredentials, Serialization.DIRAC9).decode("utf-8")
    except (TypeError, ValueError) as exc:
        return S_ERROR(DErrno.ETYPE, f"cannot send the arguments of {method}: {exc}")
    fields["clientVO"] = vo or ""
    fields["clientSetup"] = setup or ""
    return S_OK(fields)


def _formFields(body: bytes) -> dict:
    try:
        text = body.decode("ascii")
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FIELDS, errors="strict"
        )
    except ValueError as exc:  # UnicodeDecodeError included
        return S_ERROR(DErrno.EVALUE, f"request body is not a valid form: {exc}")
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            return S_ERROR(DErrno.EVALUE, f"form field {name!r} given more than once")
        fields[name] = value
    return S_OK(fields)


def _delegation(text: str) -> dict:
    """S_OK((delegated DN or None, delegated group or None)) from the ``extraCredentials`` field."""
    if not text:
        return S_OK((None, None))
    try:
        value = Serialization.decode(text, Serialization.DIRAC9)
    except ValueError as exc:
        return S_ERROR(DErrno.EVALUE, f"extraCredentials is not valid JSON: {exc}")
    if value == HOSTS_CREDENTIALS or value in ("", None):
        return S_OK((None, None))
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        group = value[1] if value[1] not in ("", None) else None
        if group is not None and not isinstance(group, str):
            return S_ERROR(DErrno.EVALUE, "extraCredentials: the delegated group must be a string")
        return S_OK((value[0], group))
    return S_ERROR(DErrno.EVALUE, 'extraCredentials must be "hosts" or [DN, group]')


def parseForm(body: bytes) -> dict:
    """S_OK({method, args, delegatedDN, delegatedGroup, rawContent}) of a DIRAC 9 request, or S_ERROR(why)."""
    if not body:
        return S_ERROR(DErrno.EVALUE, "empty request body: expected the form fields method and args")
    fields = _formFields(body)
    if not fields["OK"]:
        return fields
    fields = fields["Value"]
    method = fields.get("method", "")
    if not method:
        return S_ERROR(DErrno.EVALUE, 'request has no "method" field')
    try:
        args = Serialization.decode(fields.get("args") or "[]", Serialization.DIRAC9)
    except ValueError as exc:
        return S_ERROR(DErrno.EVALUE, f'"args" is not valid JSON of DIRAC\'s encoding: {exc}')
    if not isinstance(args, list):
        return S_ERROR(DErrno.EVALUE, f'"args" must be a JSON list, got {type(args).__name__}')
    delegation = _delegation(fields.get("extraCredentials", ""))
    if not delegation["OK"]:
        return delegation
    delegatedDN, delegatedGroup = delegation["Value"]
    return S_OK(
        {
            "method": method,
            "args": args,
            "delegatedDN": delegatedDN,
            "delegatedGroup": delegatedGroup,
            "rawContent": bool(fields.get("rawContent")),
        }
    )

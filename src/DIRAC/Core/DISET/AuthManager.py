"""Who is calling and may they call this method.

Two steps, both against the registry in the configuration:

``resolveCredentials`` turns a verified TLS identity (DN, the group carried by a
proxy, whether it is a proxy) into DIRAC's credentials dict ``DN``, ``username``,
``group``, ``properties``, ``isProxy``:

* a DN listed under ``/Registry/Hosts`` is that host, group ``hosts``, with the
  host's properties;
* a user DN acts in the group of its proxy, or its default group when the proxy
  carries none or the certificate is not a proxy; the user must be a member of
  that group (and the group must exist), otherwise the call is refused;
* an unknown DN is refused.

``AuthManager.authorize`` checks the rule for a method:
``/Systems/<System>/Services/<Service>/Authorization/<method>``, else the handler's
``auth_<method>``, else ``Authorization/Default``, else ``authenticated``.
(DIRAC lets anybody in when no rule exists at all; we do not.) A rule is a list of:

* ``all`` / ``any``: anybody with a certificate the TLS layer accepted, even unknown;
* ``authenticated``: any known user or host;
* property names: the caller needs one of them;
* ``group:<name>`` / ``vo:<name>``: the caller's group must be one of these.

Properties and groups in the same rule must both match.
"""

from __future__ import annotations

from typing import Any

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger

KW_DN = "DN"
KW_USERNAME = "username"
KW_GROUP = "group"
KW_PROPERTIES = "properties"
KW_IS_PROXY = "isProxy"
KW_HOSTS_GROUP = "hosts"
KW_DELEGATED_BY = "delegatedBy"

ANONYMOUS = "anonymous"
VISITOR = "visitor"
OPEN_RULES = {"all", "any"}
AUTHENTICATED = "authenticated"
DEFAULT_RULE = [AUTHENTICATED]
TRUSTED_HOST = "TrustedHost"

_log = gLogger.getSubLogger("Authorization")


def _registry():
    # Imported late: the registry helpers live in the security layer's package,
    # and importing them must not be a condition for importing this module.
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry

    return Registry


def _trustedHostProperty() -> str:
    try:
        from DIRAC.Core.Security import Properties
    except ImportError:
        return TRUSTED_HOST
    return getattr(Properties, "TRUSTED_HOST", TRUSTED_HOST)


def anonymousCredentials(dn: str, isProxy: bool) -> dict:
    """The credentials of a caller the registry does not know."""
    return {KW_DN: dn, KW_USERNAME: ANONYMOUS, KW_GROUP: VISITOR, KW_PROPERTIES: [], KW_IS_PROXY: isProxy}


def isAuthenticated(credDict: dict) -> bool:
    """True for a caller the registry knows (not the anonymous visitor)."""
    return credDict.get(KW_USERNAME) not in (None, "", ANONYMOUS) and credDict.get(KW_GROUP) not in (None, "", VISITOR)


def _groupExists(group: str) -> bool:
    result = gConfig.getSections("/Registry/Groups")
    return result["OK"] and group in result["Value"]


def resolveCredentials(dn: str, group: str | None = None, isProxy: bool = False) -> dict:
    """S_OK(credentials dict) for a known host or user; S_ERROR(ENOAUTH, why) otherwise."""
    registry = _registry()
    if not dn:
        return S_ERROR(DErrno.ENOAUTH, "no identity in the client certificate")
    hostResult = registry.getHostnameForDN(dn)
    if hostResult["OK"] and hostResult["Value"]:
        host = hostResult["Value"]
        return S_OK(
            {
                KW_DN: dn,
                KW_USERNAME: host,
                KW_GROUP: KW_HOSTS_GROUP,
                KW_PROPERTIES: list(registry.getPropertiesForHost(host, []) or []),
                KW_IS_PROXY: isProxy,
            }
        )
    userResult = registry.getUsernameForDN(dn)
    if not userResult["OK"] or not userResult["Value"]:
        return S_ERROR(DErrno.ENOAUTH, f"unknown identity {dn}: it is not registered as a user or a host")
    username = userResult["Value"]
    if not group:
        defaultResult = registry.findDefaultGroupForDN(dn)
        if not defaultResult["OK"] or not defaultResult["Value"]:
            return S_ERROR(DErrno.ENOAUTH, f"user {username} has no default group and the credentials name none")
        group = defaultResult["Value"]
    if not _groupExists(group):
        return S_ERROR(DErrno.ENOAUTH, f"group {group} does not exist")
    groupsResult = registry.getGroupsForUser(username)
    if not groupsResult["OK"] or group not in groupsResult["Value"]:
        return S_ERROR(DErrno.ENOAUTH, f"user {username} is not a member of group {group}")
    return S_OK(
        {
            KW_DN: dn,
            KW_USERNAME: username,
            KW_GROUP: group,
            KW_PROPERTIES: list(registry.getPropertiesForGroup(group, []) or []),
            KW_IS_PROXY: isProxy,
        }
    )


def resolveDelegation(callerCredentials: dict, delegatedDN: str, delegatedGroup: str | None) -> dict:
    """S_OK(credentials of the delegated user) when a trusted host asks; S_ERROR(ENOAUTH, why) otherwise."""
    caller = callerCredentials.get(KW_USERNAME, ANONYMOUS)
    if callerCredentials.get(KW_GROUP) != KW_HOSTS_GROUP:
        return S_ERROR(DErrno.ENOAUTH, f"delegation refused: {caller} is not a host")
    if _trustedHostProperty() not in callerCredentials.get(KW_PROPERTIES, []):
        return S_ERROR(DErrno.ENOAUTH, f"delegation refused: host {caller} lacks the TrustedHost property")
    if not isinstance(delegatedDN, str) or not delegatedDN.startswith("/"):
        return S_ERROR(DErrno.ENOAUTH, f"delegation refused: {delegatedDN!r} is not a DN")
    if delegatedGroup is not None and not isinstance(delegatedGroup, str):
        return S_ERROR(DErrno.ENOAUTH, "delegation refused: delegatedGroup must be a string")
    result = resolveCredentials(delegatedDN, delegatedGroup or None, isProxy=False)
    if not result["OK"]:
        return S_ERROR(DErrno.ENOAUTH, f"delegation refused: {result['Message']}")
    credentials = result["Value"]
    credentials[KW_DELEGATED_BY] = callerCredentials.get(KW_DN)
    return S_OK(credentials)


def _asList(rule: Any) -> list[str]:
    if rule is None:
        return []
    if isinstance(rule, str):
        return [item.strip() for item in rule.split(",") if item.strip()]
    return [str(item).strip() for item in rule if str(item).strip()]


class AuthManager:
    """Method authorization for one service (``authSection`` = ``.../Services/<Service>/Authorization``)."""

    def __init__(self, authSection: str, handlerClass: type | None = None) -> None:
        self.authSection = authSection.rstrip("/")
        self.handlerClass = handlerClass

    def getValidPropertiesForMethod(self, method: str, defaultProperties: Any = None) -> list[str]:
        """The rule for ``method``: configuration, handler default, configured Default, ``authenticated``."""
        rule = _asList(gConfig.getValue(f"{self.authSection}/{method}", []))
        if rule:
            return rule
        rule = _asList(defaultProperties)
        if not rule and self.handlerClass is not None:
            rule = _asList(getattr(self.handlerClass, f"auth_{method}", None))
        if rule:
            return rule
        rule = _asList(gConfig.getValue(f"{self.authSection}/Default", []))
        return rule or list(DEFAULT_RULE)

    def authorize(self, method: str, credDict: dict, refusal: str = "", rule: list[str] | None = None) -> dict:
        """S_OK() when the caller may call ``method``, S_ERROR(ENOAUTH, why) otherwise.

        ``refusal`` is why the identity was not accepted (unknown DN, bad group); such a
        caller may only call methods open to ``all``.
        """
        if rule is None:
            rule = self.getValidPropertiesForMethod(method)
        lowered = {item.lower() for item in rule}
        if lowered & OPEN_RULES:
            return S_OK()
        who = credDict.get(KW_USERNAME) or credDict.get(KW_DN) or "caller"
        if refusal or not isAuthenticated(credDict):
            return S_ERROR(DErrno.ENOAUTH, refusal or f"{who} is not authenticated")
        groups: set[str] = set()
        properties: set[str] = set()
        for item in rule:
            if item.lower() == AUTHENTICATED:
                continue
            if item.startswith("group:"):
                groups.add(item[len("group:") :])
            elif item.startswith("vo:"):
                groups.update(self._groupsOfVO(item[len("vo:") :]))
            else:
                properties.add(item.lower())
        if properties and not properties & {prop.lower() for prop in credDict.get(KW_PROPERTIES, [])}:
            _log.verbose("Missing property", f"{who} for {method}: needs one of {sorted(properties)}")
            return S_ERROR(
                DErrno.ENOAUTH,
                f"{method}: {who} (group {credDict.get(KW_GROUP)}) lacks the required property, "
                f"one of {', '.join(sorted(p for p in rule if p.lower() in properties))}",
            )
        if groups and credDict.get(KW_GROUP) not in groups:
            return S_ERROR(DErrno.ENOAUTH, f"{method}: group {credDict.get(KW_GROUP)} may not call it")
        return S_OK()

    def authQuery(self, methodQuery: str, credDict: dict, defaultProperties: Any = None) -> bool:
        """DIRAC's boolean form of ``authorize``."""
        rule = self.getValidPropertiesForMethod(methodQuery, defaultProperties)
        return self.authorize(methodQuery, credDict, rule=rule)["OK"]

    @staticmethod
    def _groupsOfVO(vo: str) -> set[str]:
        result = gConfig.getSections("/Registry/Groups")
        if not result["OK"]:
            return set()
        registry = _registry()
        return {group for group in result["Value"] if registry.getVOForGroup(group) == vo}

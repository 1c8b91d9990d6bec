"""Names of the security properties a group or host can hold (``/Registry/.../Properties``).

``SecurityProperty`` members are plain strings, so they compare equal to the values read
from the configuration; the module-level constants are DIRAC's historical names for them.
"""

from __future__ import annotations

from enum import StrEnum


class SecurityProperty(StrEnum):
    """A security property; its value is the word used in the configuration."""

    CS_ADMINISTRATOR = "CSAdministrator"  #: may change the central configuration
    SERVICE_ADMINISTRATOR = "ServiceAdministrator"  #: may administer services (SystemAdministrator)
    VO_ADMINISTRATOR = "VOAdministrator"  #: administers one VO
    JOB_ADMINISTRATOR = "JobAdministrator"
    JOB_MONITOR = "JobMonitor"
    JOB_SHARING = "JobSharing"
    ACCOUNTING_MONITOR = "AccountingMonitor"
    PILOT = "Pilot"
    GENERIC_PILOT = "GenericPilot"
    SITE_MANAGER = "SiteManager"
    USER_MANAGER = "UserManager"
    OPERATOR = "Operator"
    FULL_DELEGATION = "FullDelegation"  #: may get full proxies of other users
    LIMITED_DELEGATION = "LimitedDelegation"
    PRIVATE_LIMITED_DELEGATION = "PrivateLimitedDelegation"
    PROXY_MANAGEMENT = "ProxyManagement"
    PRODUCTION_MANAGEMENT = "ProductionManagement"
    PRODUCTION_SHARING = "ProductionSharing"
    PRODUCTION_USER = "ProductionUser"
    FC_MANAGEMENT = "FileCatalogManagement"  #: full rights on the file catalog, ACLs aside
    NORMAL_USER = "NormalUser"  #: an ordinary user
    TRUSTED_HOST = "TrustedHost"  #: a host acting on behalf of users (e.g. the S3 gateway)
    ALARMS_MANAGEMENT = "AlarmsManagement"


CS_ADMINISTRATOR = SecurityProperty.CS_ADMINISTRATOR
SERVICE_ADMINISTRATOR = SecurityProperty.SERVICE_ADMINISTRATOR
VO_ADMINISTRATOR = SecurityProperty.VO_ADMINISTRATOR
JOB_ADMINISTRATOR = SecurityProperty.JOB_ADMINISTRATOR
JOB_MONITOR = SecurityProperty.JOB_MONITOR
JOB_SHARING = SecurityProperty.JOB_SHARING
ACCOUNTING_MONITOR = SecurityProperty.ACCOUNTING_MONITOR
PILOT = SecurityProperty.PILOT
GENERIC_PILOT = SecurityProperty.GENERIC_PILOT
SITE_MANAGER = SecurityProperty.SITE_MANAGER
USER_MANAGER = SecurityProperty.USER_MANAGER
OPERATOR = SecurityProperty.OPERATOR
FULL_DELEGATION = SecurityProperty.FULL_DELEGATION
LIMITED_DELEGATION = SecurityProperty.LIMITED_DELEGATION
PRIVATE_LIMITED_DELEGATION = SecurityProperty.PRIVATE_LIMITED_DELEGATION
PROXY_MANAGEMENT = SecurityProperty.PROXY_MANAGEMENT
PRODUCTION_MANAGEMENT = SecurityProperty.PRODUCTION_MANAGEMENT
PRODUCTION_SHARING = SecurityProperty.PRODUCTION_SHARING
PRODUCTION_USER = SecurityProperty.PRODUCTION_USER
FC_MANAGEMENT = SecurityProperty.FC_MANAGEMENT
NORMAL_USER = SecurityProperty.NORMAL_USER
TRUSTED_HOST = SecurityProperty.TRUSTED_HOST
ALARMS_MANAGEMENT = SecurityProperty.ALARMS_MANAGEMENT

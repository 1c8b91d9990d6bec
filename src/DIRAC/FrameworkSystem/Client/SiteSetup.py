"""Site bootstrap: from a small site cfg to a running configuration server and SystemAdministrator.

``setupSite(options)``:

1. lays out the instance folder (see ``InstanceSettings``);
2. makes sure the central configuration file ``etc/CentralConfiguration.cfg`` exists;
3. prepares ``Configuration/Server`` and ``Framework/SystemAdministrator`` (their sections,
   ports and URLs written into that file, runit folders linked into ``startup/``, held down);
4. writes the seed of the central configuration: the site cfg's other sections (only what is
   missing: re-running never overwrites live changes), the host with ``CSAdministrator``,
   ``ServiceAdministrator`` and ``TrustedHost``, the administrator in the admin group, and
   ``/DIRAC/Configuration/Servers``;
5. writes the host's local ``etc/dirac.cfg`` (configuration server URL, security locations,
   ``/LocalSite/InstancePath``, the site cfg's ``LocalConfiguration`` section: S3 keys go
   there), ``etc/Configuration_Server.cfg`` (the server's ``CentralFile``) and
   ``etc/client.cfg`` (what a user's client needs: server URL and CA folder, no secrets);
6. starts ``runsvdir`` on ``startup/`` (PID in ``runsvdir.pid``; an alive one is reused), starts
   the configuration server, waits until it is ready, then the SystemAdministrator;
7. installs the site cfg's ``Services`` list.

Running it again on the same folder checks everything and changes only what differs.
``stopSite(folder)`` stops runsvdir and everything under it, by PID.

Site cfg (DIRAC's ``LocalInstallation`` names)::

    LocalInstallation
    {
      TargetPath = /opt/dirac                # the instance folder
      Host = diracserver.institute.tld       # host name in the service URLs (certificate's name)
      ListenAddress = 0.0.0.0
      PortBase = 9135                        # optional: ports from here (server, SystemAdministrator, ...)
      CALocation = /etc/grid-security/certificates
      CertFile = /etc/grid-security/hostcert.pem
      KeyFile = /etc/grid-security/hostkey.pem
      SiteName = DIRAC.Institute.tld
      VirtualOrganization = myvo
      AdminUserName = admin
      AdminUserDN = /DC=org/DC=institute/CN=Admin Person
      AdminGroupName = dirac_admin
      Services = DataManagement/FileCatalog  # optional, installed after the two above
    }
    LocalConfiguration { ... }               # merged into this host's etc/dirac.cfg
    Registry { ... }                         # any other section: into the central configuration
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from diraccfg import CFG

from DIRAC.ConfigurationSystem.Service.CentralStore import VERSION_OPTION, parseCFG, versionFromTime
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client import Runit
from DIRAC.FrameworkSystem.Client.ComponentInstaller import DEFAULT_WAIT, ComponentInstaller
from DIRAC.FrameworkSystem.Client.ComponentTemplates import walkOptions
from DIRAC.FrameworkSystem.Client.InstanceSettings import DEFAULT_LISTEN, InstanceSettings
from DIRAC.FrameworkSystem.Client.LocalCSAPI import LocalCSAPI

SEEDS = (("Configuration", "Server"), ("Framework", "SystemAdministrator"))
HOST_PROPERTIES = ("CSAdministrator", "ServiceAdministrator", "TrustedHost")
ADMIN_PROPERTIES = ("CSAdministrator", "ServiceAdministrator")
SITE_SECTION = "LocalInstallation"
LOCAL_SECTION = "LocalConfiguration"
DEFAULT_CA = "/etc/grid-security/certificates"
DEFAULT_CERT = "/etc/grid-security/hostcert.pem"
DEFAULT_KEY = "/etc/grid-security/hostkey.pem"
KEEP_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "USER", "LOGNAME", "TMPDIR", "VIRTUAL_ENV")

# site cfg option -> SiteOptions attribute
_SITE_OPTIONS = {
    "TargetPath": "instancePath",
    "InstancePath": "instancePath",
    "Host": "host",
    "ListenAddress": "listenAddress",
    "PortBase": "portBase",
    "CALocation": "caLocation",
    "CertFile": "certFile",
    "KeyFile": "keyFile",
    "SiteName": "siteName",
    "VirtualOrganization": "vo",
    "AdminUserName": "adminName",
    "AdminUserDN": "adminDN",
    "AdminGroupName": "adminGroup",
    "Services": "services",
}


@dataclass
class SiteOptions:
    """What the bootstrap needs; from a site cfg (``loadSiteCfg``) and/or the command line."""

    instancePath: str = ""
    host: str = ""
    listenAddress: str = DEFAULT_LISTEN
    portBase: int | None = None
    caLocation: str = ""
    certFile: str = ""
    keyFile: str = ""
    siteName: str = ""
    vo: str = ""
    adminName: str = "admin"
    adminDN: str = ""
    adminGroup: str = "dirac_admin"
    services: list[str] = field(default_factory=list)
    central: CFG = field(default_factory=CFG)
    local: CFG = field(default_factory=CFG)
    timeout: float = DEFAULT_WAIT

    def update(self, **values: object) -> None:
        """Set the given attributes, ignoring None (command-line options not given)."""
        for name, value in values.items():
            if value is not None:
                setattr(self, name, value)


def loadSiteCfg(path: str) -> dict:
    """S_OK(SiteOptions) from a site cfg file; S_ERROR naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            parsed = parseCFG(handle.read())
    except OSError as exc:
        return S_ERROR(DErrno.ENOENT, f"cannot read the site cfg {path}: {exc.strerror}")
    if not parsed["OK"]:
        return S_ERROR(DErrno.ECONF, f"{path}: {parsed['Message']}")
    cfg = parsed["Value"]
    options = SiteOptions()
    site = cfg.getAsCFG(SITE_SECTION)
    for option in site.listOptions():
        attribute = _SITE_OPTIONS.get(option)
        if attribute is None:
            return S_ERROR(
                DErrno.ECONF, f"{path}: unknown option {SITE_SECTION}/{option} (known: {', '.join(_SITE_OPTIONS)})"
            )
        value = site.getOption(option, "")
        if attribute == "services":
            value = [item.strip() for item in value.split(",") if item.strip()]
        elif attribute == "portBase":
            try:
                value = int(value) if value else None
            except ValueError:
                return S_ERROR(DErrno.ECONF, f"{path}: PortBase = {value!r} is not a port number")
        setattr(options, attribute, value)
    options.local = cfg.getAsCFG(LOCAL_SECTION)
    central = CFG()
    for section in cfg.listSections():
        if section not in (SITE_SECTION, LOCAL_SECTION):
            central.createNewSection(section, "", cfg.getAsCFG(section))
    options.central = central
    return S_OK(options)


def hostDNOf(certFile: str) -> dict:
    """S_OK(subject DN of the certificate in ``certFile``)."""
    from DIRAC.Core.Security.X509Certificate import X509Certificate

    cert = X509Certificate()
    loaded = cert.loadFromFile(certFile)
    if not loaded["OK"]:
        return S_ERROR(DErrno.ECERTREAD, f"cannot read the host certificate {certFile}: {loaded['Message']}")
    return cert.getSubjectDN()


def completeOptions(options: SiteOptions) -> dict:
    """S_OK(options) with defaults filled in and every file checked; S_ERROR says what to give."""
    if not options.instancePath:
        return S_ERROR(DErrno.EVALUE, "no instance folder: give --folder (or TargetPath in the site cfg)")
    options.instancePath = os.path.abspath(options.instancePath)
    options.host = options.host or socket.getfqdn()
    options.caLocation = os.path.abspath(options.caLocation or DEFAULT_CA)
    options.certFile = os.path.abspath(options.certFile or DEFAULT_CERT)
    options.keyFile = os.path.abspath(options.keyFile or DEFAULT_KEY)
    options.siteName = options.siteName or f"DIRAC.{options.host}"
    if not os.path.isdir(options.caLocation):
        return S_ERROR(DErrno.ENOENT, f"CA folder {options.caLocation} does not exist (give --ca-dir)")
    for label, path in (("host certificate", options.certFile), ("host key", options.keyFile)):
        if not os.path.isfile(path):
            return S_ERROR(DErrno.ENOENT, f"{label} {path} does not exist (give --host-cert / --host-key)")
    if options.portBase is not None and not 0 < options.portBase < 65000:
        return S_ERROR(DErrno.EVALUE, f"port base {options.portBase} is not a usable port")
    for service in options.services:
        if service.count("/") != 1:
            return S_ERROR(DErrno.EVALUE, f"Services: {service!r} is not of the form System/Service")
    return S_OK(options)


def settingsFor(options: SiteOptions) -> InstanceSettings:
    """The instance settings the options describe."""
    return InstanceSettings(
        instancePath=options.instancePath,
        host=options.host,
        listenAddress=options.listenAddress or DEFAULT_LISTEN,
        portBase=options.portBase,
        caLocation=options.caLocation,
    )


def _writeAtomically(path: str, text: str, mode: int) -> None:
    tmp = f"{path}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _readCFG(path: str) -> dict:
    if not os.path.exists(path):
        return S_OK(CFG())
    try:
        with open(path, encoding="utf-8") as handle:
            return parseCFG(handle.read())
    except OSError as exc:
        return S_ERROR(DErrno.EIO, f"cannot read {path}: {exc.strerror}")


def _union(value: str, wanted: tuple[str, ...] | list[str]) -> str:
    items = [item.strip() for item in str(value or "").split(",") if item.strip()]
    return ", ".join(items + [item for item in wanted if item not in items])


def _checkAdministrator(settings: InstanceSettings, options: SiteOptions) -> dict:
    """S_OK() when the administrator's DN is given or already in the central configuration."""
    current = _readCFG(settings.centralCfgPath)
    if not current["OK"]:
        return current
    admin = current["Value"].getOption(f"Registry/Users/{options.adminName}/DN", "")
    if not (options.adminDN or admin):
        return S_ERROR(
            DErrno.EVALUE,
            f"no administrator: give --admin-dn (the DN of {options.adminName}'s certificate) or AdminUserDN",
        )
    return S_OK()


def _ensureCentralFile(settings: InstanceSettings, options: SiteOptions) -> dict:
    """Create a minimal central file (name and version) when there is none."""
    if not os.path.exists(settings.centralCfgPath):
        cfg = CFG()
        cfg.createNewSection("DIRAC")
        cfg.createNewSection("DIRAC/Configuration")
        cfg.setOption("DIRAC/Configuration/Name", options.siteName)
        cfg.setOption(VERSION_OPTION, versionFromTime(time.time()))
        _writeAtomically(settings.centralCfgPath, str(cfg), 0o644)
    return S_OK()


def _seedCentral(settings: InstanceSettings, options: SiteOptions, hostDN: str, serverURL: str) -> dict:
    """Add the site cfg's sections (what is missing) and enforce the bootstrap's own entries."""
    csAPI = LocalCSAPI(settings.centralCfgPath)
    current = csAPI.getCurrentCFG()
    if not current["OK"]:
        return current
    current = current["Value"]
    wanted: dict[str, str] = {}
    for path, value in walkOptions(options.central):
        if not current.isOption(path):
            wanted[path] = value
    merged = current.mergeWith(options.central)
    host = f"Registry/Hosts/{options.host}"
    wanted[f"{host}/DN"] = hostDN
    wanted[f"{host}/Properties"] = _union(merged.getOption(f"{host}/Properties", ""), HOST_PROPERTIES)
    if options.adminDN:
        wanted[f"Registry/Users/{options.adminName}/DN"] = options.adminDN
    group = f"Registry/Groups/{options.adminGroup}"
    wanted[f"{group}/Users"] = _union(merged.getOption(f"{group}/Users", ""), [options.adminName])
    wanted[f"{group}/Properties"] = _union(merged.getOption(f"{group}/Properties", ""), ADMIN_PROPERTIES)
    if options.vo:
        wanted["DIRAC/VirtualOrganization"] = options.vo
        wanted[f"{group}/VO"] = merged.getOption(f"{group}/VO", "") or options.vo
    wanted["DIRAC/Configuration/Servers"] = _union(merged.getOption("DIRAC/Configuration/Servers", ""), [serverURL])
    for path, value in wanted.items():
        if current.getOption(path, None) != value:
            result = csAPI.setOption(f"/{path}", value)
            if not result["OK"]:
                return S_ERROR(result["Errno"], f"central configuration, {path}: {result['Message']}")
    return csAPI.commit()


def _writeLocalConfiguration(settings: InstanceSettings, options: SiteOptions, serverURL: str) -> dict:
    """etc/dirac.cfg (existing < LocalConfiguration < generated) and etc/Configuration_Server.cfg."""
    generated = {
        "DIRAC": {
            "Hostname": options.host,
            "Configuration": {"Servers": serverURL},
            "Security": {
                "CALocation": options.caLocation,
                "CertFile": options.certFile,
                "KeyFile": options.keyFile,
                "UseServerCertificate": "yes",
            },
        },
        "LocalSite": {
            "Site": options.siteName,
            "InstancePath": settings.instancePath,
            "ListenAddress": settings.listenAddress,
        },
    }
    if options.portBase:
        generated["LocalSite"]["PortBase"] = str(options.portBase)
    if options.vo:
        generated["DIRAC"]["VirtualOrganization"] = options.vo
    existing = _readCFG(settings.localCfgPath)
    if not existing["OK"]:
        return existing
    final = existing["Value"].mergeWith(options.local).mergeWith(CFG().loadFromDict(generated))
    server = CFG().loadFromDict({"DIRAC": {"Configuration": {"CentralFile": settings.centralCfgPath}}})
    client = {
        "DIRAC": {"Configuration": {"Servers": serverURL}, "Security": {"CALocation": options.caLocation}},
        "LocalSite": {"Site": options.siteName},
    }
    if options.vo:
        client["DIRAC"]["VirtualOrganization"] = options.vo
    try:
        # 0600: the local file may hold S3 keys and other secrets of this host.
        _writeAtomically(settings.localCfgPath, str(final), 0o600)
        _writeAtomically(settings.componentCfgPath(*SEEDS[0]), str(server), 0o600)
        _writeAtomically(settings.clientCfgPath, str(CFG().loadFromDict(client)), 0o644)
    except OSError as exc:
        return S_ERROR(DErrno.EIO, f"cannot write the local configuration in {settings.etcDir}: {exc}")
    return S_OK()


def _otherComponents(installer: ComponentInstaller, settings: InstanceSettings) -> list[tuple[str, str]]:
    """Installed components other than the seeds that runit will start by itself (no ``down`` file)."""
    installed = installer.getInstalledComponents()
    if not installed["OK"]:
        return []
    return [
        (system, component)
        for system, components in installed["Value"]["Services"].items()
        for component in components
        if (system, component) not in SEEDS
        and not os.path.exists(os.path.join(settings.componentDir(system, component), "down"))
    ]


def runsvdirEnvironment() -> dict[str, str]:
    """The environment runsvdir (and so every component) starts with: no credentials or DIRAC variables."""
    return {key: value for key, value in os.environ.items() if key in KEEP_ENV or key.startswith("LC_")}


def setupSite(options: SiteOptions, report=lambda message: None) -> dict:
    """Bootstrap (or check) the instance; S_OK(summary dict). ``report(text)`` receives progress lines."""
    completed = completeOptions(options)
    if not completed["OK"]:
        return completed
    tools = Runit.checkTools()
    if not tools["OK"]:
        return tools
    hostDN = hostDNOf(options.certFile)
    if not hostDN["OK"]:
        return hostDN
    settings = settingsFor(options)
    result = _checkAdministrator(settings, options)
    if not result["OK"]:
        return result
    try:
        for folder in settings.folders():
            os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        return S_ERROR(DErrno.EIO, f"cannot create the instance folder {settings.instancePath}: {exc}")
    result = _ensureCentralFile(settings, options)
    if not result["OK"]:
        return result
    installer = ComponentInstaller(
        settings, csAPIFactory=lambda: LocalCSAPI(settings.centralCfgPath), waitTimeout=options.timeout
    )
    pending = []
    for system, component in SEEDS:
        prepared = installer.prepareComponent("service", system, component, {})
        if not prepared["OK"]:
            return prepared
        pending.append(prepared["Value"])
    serverURL = pending[0]["URL"]
    result = _seedCentral(settings, options, hostDN["Value"], serverURL)
    if not result["OK"]:
        return result
    result = _writeLocalConfiguration(settings, options, serverURL)
    if not result["OK"]:
        return result
    # Components installed earlier start with runsvdir; when this run starts it, wait for them too.
    fresh = not Runit.runsvdirPid(settings.pidFile, settings.startupDir)
    others = _otherComponents(installer, settings) if fresh else []
    offsets = {item: installer.logSize(*item) for item in others}
    runsvdir = Runit.startRunsvdir(settings.startupDir, settings.pidFile, settings.runsvdirLog, runsvdirEnvironment())
    if not runsvdir["OK"]:
        return runsvdir
    report(f"runsvdir: pid {runsvdir['Value']} on {settings.startupDir}")
    summary = {"InstancePath": settings.instancePath, "RunsvdirPID": runsvdir["Value"], "Components": {}}
    for item in pending:
        name = f"{item['System']}/{item['Component']}"
        report(f"{name}: starting at {item['URL']}")
        done = installer.activateComponent(item)
        if not done["OK"]:
            return done
        summary["Components"][name] = done["Value"]
        report(f"{name}: {done['Value']['Action']}, pid {done['Value']['Status'].get('PID')}")
    for system, component in others:
        done = installer.waitForComponent(system, component, offsets[(system, component)])
        if not done["OK"]:
            return S_ERROR(done["Errno"], f"the instance runs, but: {done['Message']}")
        report(f"{system}/{component}: started, pid {done['Value'].get('PID')}")
    for name in options.services:
        system, component = name.split("/")
        report(f"{name}: installing")
        done = installer.installComponent("service", system, component, {})
        if not done["OK"]:
            return done
        summary["Components"][name] = done["Value"]
        report(f"{name}: {done['Value']['Action']} at {done['Value']['URL']}")
    summary.update(
        ConfigurationServer=serverURL,
        SystemAdministrator=pending[1]["URL"],
        SystemAdministratorPort=pending[1]["Port"],
        Host=settings.host,
        LocalConfiguration=settings.localCfgPath,
        ClientConfiguration=settings.clientCfgPath,
        CentralConfiguration=settings.centralCfgPath,
    )
    return S_OK(summary)


def stopSite(folder: str, timeout: float = 20.0) -> dict:
    """Stop runsvdir and every process under it (components, loggers, runsv), by PID; S_OK(PIDs)."""
    settings = InstanceSettings(folder)
    if not os.path.isdir(settings.startupDir):
        return S_ERROR(DErrno.ENOENT, f"{settings.instancePath} is not an instance folder (no startup/)")
    return Runit.stopSupervision(settings.instancePath, settings.startupDir, settings.pidFile, timeout)


def siteStatus(folder: str) -> dict:
    """S_OK({"RunsvdirPID": pid or 0, "Components": {"System_Component": status}})."""
    settings = InstanceSettings(folder)
    if not os.path.isdir(settings.startupDir):
        return S_ERROR(DErrno.ENOENT, f"{settings.instancePath} is not an instance folder (no startup/)")
    installer = ComponentInstaller(settings)
    statuses = installer.getComponentStatus()
    if not statuses["OK"]:
        return statuses
    return S_OK(
        {"RunsvdirPID": Runit.runsvdirPid(settings.pidFile, settings.startupDir), "Components": statuses["Value"]}
    )

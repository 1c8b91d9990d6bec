"""The catalog's permission policy: pure rules, and a matrix checked through hasAccess and the real calls."""

from __future__ import annotations

import pytest

from DIRAC.DataManagementSystem.DB import FileCatalogPolicy as policy
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB


def cred(user: str, group: str, vo: str = "lhcb", properties: tuple = ("NormalUser",)) -> dict:
    return {"DN": f"/CN={user}", "username": user, "group": group, "properties": list(properties), "VO": vo}


CALLERS = {
    "ursula": cred("ursula", "lhcb_user"),
    "victor": cred("victor", "lhcb_user"),
    "olga": cred("olga", "lhcb_prod"),
    "alice": cred("alice", "atlas_user", vo="atlas"),
    "admin": cred("adm", "lhcb_admin", properties=("FileCatalogManagement",)),
    "nobody": {"DN": "/CN=unknown", "properties": []},
    "novo": cred("nora", "odd_group", vo=""),
}
HOME = "/lhcb/user/u/ursula"
INFO = {"SE": "SE-A", "Size": 1, "Checksum": "1"}


# ---------------------------------------------------------------- pure rules


def test_posix_classes_do_not_fall_through():
    owner = policy.Identity("ursula", "lhcb_user")
    member = policy.Identity("victor", "lhcb_user")
    other = policy.Identity("olga", "lhcb_prod")
    # mode 0o077: the owner has no bits even though group and others do
    assert not policy.mayRead(owner, "ursula", "lhcb_user", 0o077)
    assert policy.mayRead(member, "ursula", "lhcb_user", 0o077)
    assert policy.mayWrite(other, "ursula", "lhcb_user", 0o707)
    assert not policy.mayWrite(member, "ursula", "lhcb_user", 0o707)


def test_manager_bypasses_and_anonymous_never_writes():
    manager = policy.Identity(properties=frozenset({policy.FC_MANAGEMENT}))
    assert policy.mayWrite(manager, "root", "root", 0o000)
    assert policy.mayChown(manager)
    anonymous = policy.Identity()
    assert not policy.mayWrite(anonymous, "root", "root", 0o777)
    assert policy.mayRead(anonymous, "root", "root", 0o755)


def test_root_is_reserved():
    rootUser = policy.Identity("root", "root")
    assert not policy.mayWrite(rootUser, "root", "root", 0o775)
    assert not policy.mayChange(rootUser, "root")
    assert policy.mayRead(rootUser, "root", "root", 0o755)


def test_identity_from_credentials_and_home():
    ident = policy.Identity.fromCredentials(
        {"username": "ursula", "group": "lhcb_user", "properties": "NormalUser, FileCatalogManagement"},
        voResolver=lambda group: "lhcb",
        groupsResolver=lambda user: ["lhcb_prod"],
    )
    assert ident.home == HOME
    assert ident.isManager
    assert ident.groups == {"lhcb_user", "lhcb_prod"}
    assert policy.Identity.fromCredentials("garbage") == policy.Identity()
    assert policy.Identity("u", "g").home is None  # no VO, no home


@pytest.mark.parametrize(
    "path, system",
    [
        ("/", True),
        ("/lhcb", True),
        ("/lhcb/user", True),
        ("/lhcb/user/u", True),
        (HOME, False),
        ("/lhcb/data", False),
        ("/lhcb/user/uu", False),
    ],
)
def test_system_levels(path, system):
    assert policy.isSystemLevel(path) is system


def test_operation_classes():
    assert policy.classifyOperation("getFileMetadata") == policy.READ
    assert policy.classifyOperation("addReplica") == policy.WRITE
    assert policy.classifyOperation("removeDirectory") == policy.DELETE
    assert policy.classifyOperation("changePathOwner") == policy.CHOWN
    # the names the S3 gateway uses for S3 operations
    assert policy.classifyOperation("getFile") == policy.READ
    assert policy.classifyOperation("putFile") == policy.WRITE
    assert policy.classifyOperation("removeFile") == policy.DELETE
    assert policy.classifyOperation("doSomething") is None
    assert policy.classifyOperation(["Read"]) is None


# ---------------------------------------------------------------- matrix on a real catalog


@pytest.fixture
def world(catalog_url):
    """ursula's home with a file f (0o644), a private file p (0o600), a group-writable
    directory shared (0o775) holding ursula's file uf, and a private directory priv (0o700);
    on each database backend."""
    db = FileCatalogDB(catalog_url)
    ursula = CALLERS["ursula"]
    files = {f"{HOME}/{name}": INFO for name in ("f", "p", "shared/uf", "priv/secret")}
    assert not db.addFile(files, ursula)["Value"]["Failed"]
    assert not db.changePathMode({f"{HOME}/p": 0o600, f"{HOME}/shared": 0o775, f"{HOME}/priv": 0o700}, ursula)["Value"][
        "Failed"
    ]
    yield db
    db.close()


MATRIX = [
    # caller, operation, path, allowed
    ("ursula", "Write", f"{HOME}/new", True),
    ("victor", "Write", f"{HOME}/new", False),  # another user's home, same group
    ("olga", "Write", f"{HOME}/new", False),
    ("victor", "Write", "/lhcb/user/v/victor/new", True),  # own home, created on demand
    ("victor", "Write", "/lhcb/user/u/ursula2/new", False),  # somebody else's missing home
    ("alice", "Write", "/lhcb/user/a/alice/new", False),  # a home in another VO
    ("alice", "Write", "/atlas/user/a/alice/new", True),
    ("novo", "Write", "/lhcb/user/n/nora/new", False),  # no VO known: no home
    ("ursula", "Write", "/newtop", False),  # '/' is root's
    ("ursula", "Write", "/lhcb/data/new", False),  # '/<vo>' is root's
    ("admin", "Write", "/lhcb/data/new", True),
    ("admin", "Write", f"{HOME}/new", True),
    ("victor", "Write", f"{HOME}/shared/new", True),  # group-writable directory
    ("olga", "Write", f"{HOME}/shared/new", False),
    ("victor", "Write", f"{HOME}/shared/uf", False),  # existing file of ursula: no overwrite
    ("ursula", "Write", f"{HOME}/shared/uf", True),
    ("nobody", "Write", f"{HOME}/shared/new", False),
    ("ursula", "Delete", f"{HOME}/f", True),
    ("victor", "Delete", f"{HOME}/f", False),
    ("victor", "Delete", f"{HOME}/shared/uf", True),  # POSIX: w on the directory
    ("ursula", "Delete", HOME, False),  # nobody removes their own home
    ("admin", "Delete", HOME, True),
    ("victor", "Read", f"{HOME}/f", True),
    ("victor", "Read", f"{HOME}/p", False),
    ("nobody", "Read", f"{HOME}/f", True),
    ("victor", "Read", f"{HOME}/priv/secret", False),  # POSIX: no search (x) on priv, whatever the file's bits
    ("victor", "Read", f"{HOME}/priv/missing", False),  # nearest directory is private
    ("victor", "Read", f"{HOME}/priv", False),
    ("ursula", "Read", f"{HOME}/p", True),
    ("ursula", "changePathMode", f"{HOME}/f", True),
    ("victor", "changePathMode", f"{HOME}/f", False),
    ("ursula", "changePathOwner", f"{HOME}/f", False),
    ("admin", "changePathOwner", f"{HOME}/f", True),
]


def _perform(db: FileCatalogDB, credDict: dict, operation: str, path: str) -> dict:
    """The real call behind an access class."""
    if operation == "Write":
        return db.addFile({path: INFO}, credDict)
    if operation == "Delete":
        return db.removeDirectory(path, credDict) if path == HOME else db.removeFile(path, credDict)
    if operation == "Read":
        return db.getFileMetadata(path, credDict)
    if operation == "changePathMode":
        return db.changePathMode({path: 0o640}, credDict)
    return db.changePathOwner({path: "victor"}, credDict)


@pytest.mark.parametrize("caller, operation, path, allowed", MATRIX)
def test_permission_matrix(world, caller, operation, path, allowed):
    credDict = CALLERS[caller]
    access = world.hasAccess([path], operation, credDict)
    assert access["OK"] and access["Value"]["Successful"] == {path: allowed}

    if operation == "Delete" and path == HOME:
        # removing a home needs it empty: clear it as a manager first, keeping the home itself
        everything = world.listDirectory(HOME, CALLERS["admin"])["Value"]["Successful"][HOME]
        world.removeFile(list(everything["Files"]), CALLERS["admin"])
        for sub in everything["SubDirs"]:
            listing = world.listDirectory(sub, CALLERS["admin"])["Value"]["Successful"][sub]
            world.removeFile(list(listing["Files"]), CALLERS["admin"])
            world.removeDirectory(sub, CALLERS["admin"])
    before = world.getCatalogCounters()["Value"]
    result = _perform(world, credDict, operation, path)
    assert result["OK"], result
    if allowed:
        assert result["Value"]["Successful"], result
    else:
        assert "Permission denied" in result["Value"]["Failed"][path]
        assert world.getCatalogCounters()["Value"] == before  # nothing written


def test_change_of_a_missing_path_is_refused(world):
    assert world.hasAccess(f"{HOME}/missing", "changePathMode", CALLERS["ursula"])["Value"]["Successful"] == {
        f"{HOME}/missing": False
    }


def test_user_writing_into_another_home_writes_nothing(world):
    victor = CALLERS["victor"]
    lfns = {f"{HOME}/intruder/x{i}": INFO for i in range(3)}
    result = world.addFile(lfns, victor)["Value"]
    assert set(result["Failed"]) == set(lfns) and not result["Successful"]
    assert world.exists(f"{HOME}/intruder", victor)["Value"]["Successful"] == {f"{HOME}/intruder": False}
    assert "Permission denied" in world.createDirectory(f"{HOME}/d", victor)["Value"]["Failed"][f"{HOME}/d"]
    assert "Permission denied" in world.addReplica({f"{HOME}/f": {"SE": "X"}}, victor)["Value"]["Failed"][f"{HOME}/f"]
    assert (
        "Permission denied"
        in world.removeReplica({f"{HOME}/f": {"SE": "SE-A"}}, victor)["Value"]["Failed"][f"{HOME}/f"]
    )
    assert world.getReplicas(f"{HOME}/f", victor)["Value"]["Successful"] == {f"{HOME}/f": {"SE-A": ""}}


def test_home_created_for_its_owner_only(world):
    victor = CALLERS["victor"]
    assert world.createDirectory("/lhcb/user/v/victor", victor)["Value"]["Successful"]
    meta = world.getDirectoryMetadata(["/lhcb/user/v", "/lhcb/user/v/victor"], victor)["Value"]["Successful"]
    assert (meta["/lhcb/user/v"]["Owner"], meta["/lhcb/user/v"]["Mode"]) == ("root", 0o755)
    assert (meta["/lhcb/user/v/victor"]["Owner"], meta["/lhcb/user/v/victor"]["OwnerGroup"]) == ("victor", "lhcb_user")
    # ursula may not create siblings next to the homes
    assert world.createDirectory("/lhcb/user/v/vx", CALLERS["ursula"])["Value"]["Failed"]


def test_manager_handover_of_a_project_area(world):
    admin, olga = CALLERS["admin"], CALLERS["olga"]
    assert world.createDirectory("/lhcb/data/2024", admin)["Value"]["Successful"]
    assert world.getDirectoryMetadata("/lhcb/data", admin)["Value"]["Successful"]["/lhcb/data"]["Owner"] == "adm"
    assert world.changePathGroup({"/lhcb/data/2024": "lhcb_prod"}, admin)["Value"]["Successful"]
    assert world.changePathMode({"/lhcb/data/2024": 0o775}, admin)["Value"]["Successful"]
    assert world.addFile({"/lhcb/data/2024/run.raw": INFO}, olga)["Value"]["Successful"]
    assert world.addFile({"/lhcb/data/2024/run2.raw": INFO}, CALLERS["victor"])["Value"]["Failed"]

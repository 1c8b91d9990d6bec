"""The POSIX rules of ``FileCatalogPolicy.PathAccess`` on an in-memory view: no database, one rule per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from DIRAC.DataManagementSystem.DB import FileCatalogPolicy as policy
from DIRAC.DataManagementSystem.DB.FileCatalogView import ancestorsOf

ALICE = policy.Identity("alice", "users", vo="vo")
BOB = policy.Identity("bob", "users", vo="vo")
CAROL = policy.Identity("carol", "others", vo="vo")
MANAGER = policy.Identity("adam", "admins", frozenset({policy.FC_MANAGEMENT}), vo="vo")
ANONYMOUS = policy.Identity()
HOME = "/vo/user/a/alice"


@dataclass(frozen=True)
class Row:
    Path: str
    Owner: str
    OwnerGroup: str
    Mode: int


class View:
    """The shape of ``CatalogView`` the policy reads: dirs and files by path, nearestDir."""

    def __init__(self, dirs: dict[str, tuple[str, str, int]], files: dict[str, tuple[str, str, int]]):
        self.dirs = {path: Row(path, *entry) for path, entry in dirs.items()}
        self.files = {path: Row(path, *entry) for path, entry in files.items()}

    def nearestDir(self, path: str) -> Row:
        return next(self.dirs[ancestor] for ancestor in ancestorsOf(path) if ancestor in self.dirs)


def view(**modes: int) -> View:
    """alice's home (0755) with ``priv`` (0700 unless given), ``shared`` and the files ``f``, ``priv/f``."""
    root = ("root", "root", 0o755)
    dirs = {"/": root, "/vo": root, "/vo/user": root, "/vo/user/a": root, HOME: ("alice", "users", 0o755)}
    for name in ("priv", "shared"):
        dirs[f"{HOME}/{name}"] = ("alice", "users", modes.get(name, 0o700 if name == "priv" else 0o775))
    files = {f"{HOME}/f": ("alice", "users", modes.get("f", 0o644)), f"{HOME}/priv/f": ("alice", "users", 0o644)}
    return View(dirs, files)


def check(identity: policy.Identity, opClass: str, path: str, **modes: int) -> str | None:
    return policy.PathAccess(identity, view(**modes)).check(opClass, path)


DENIED_SEARCH = f"Permission denied: no search permission on {HOME}/priv"


@pytest.mark.parametrize(
    "identity, opClass, path, reason",
    [
        # reach: x on every existing ancestor, the same answer for existing and missing names
        (BOB, policy.READ, f"{HOME}/priv/f", DENIED_SEARCH),
        (BOB, policy.READ, f"{HOME}/priv/missing", DENIED_SEARCH),
        (BOB, policy.READ, f"{HOME}/priv/missing/deeper", DENIED_SEARCH),
        (BOB, policy.LOOKUP, f"{HOME}/priv/f", DENIED_SEARCH),
        (CAROL, policy.WRITE, f"{HOME}/priv/new", DENIED_SEARCH),
        (BOB, policy.DELETE, f"{HOME}/priv/f", DENIED_SEARCH),
        (BOB, policy.CHANGE, f"{HOME}/priv/f", DENIED_SEARCH),
        (MANAGER, policy.READ, f"{HOME}/priv/f", None),
        (ALICE, policy.READ, f"{HOME}/priv/f", None),
        # the directory itself is reachable; reading (listing) it needs r on it
        (BOB, policy.LOOKUP, f"{HOME}/priv", None),
        (BOB, policy.READ, f"{HOME}/priv", f"Permission denied: no read permission on {HOME}/priv"),
        # read: r on the entry, or on the nearest existing directory for a missing name
        (BOB, policy.READ, f"{HOME}/f", None),
        (ANONYMOUS, policy.READ, f"{HOME}/f", None),
        (BOB, policy.READ, f"{HOME}/shared/missing", None),
        # write: w on the directory (x comes with reach), w on an existing file
        (BOB, policy.WRITE, f"{HOME}/shared/new", None),
        (CAROL, policy.WRITE, f"{HOME}/shared/new", f"Permission denied: no write permission on {HOME}/shared"),
        (BOB, policy.WRITE, f"{HOME}/new", f"Permission denied: no write permission on {HOME}"),
        (BOB, policy.WRITE, f"{HOME}/f", f"Permission denied: no write permission on {HOME}"),
        (ANONYMOUS, policy.WRITE, f"{HOME}/shared/new", policy.NO_OWNER),
        (BOB, policy.WRITE, "/vo/user/b/bob/new", None),  # own home, created on demand
        (CAROL, policy.WRITE, "/vo/user/b/bob/new", "Permission denied: no write permission on /vo/user"),
        # delete: w on the parent
        (BOB, policy.DELETE, f"{HOME}/shared/x", None),
        (BOB, policy.DELETE, f"{HOME}/f", f"Permission denied: no write permission on {HOME}"),
        (ALICE, policy.DELETE, HOME, "Permission denied: no write permission on /vo/user/a"),
        # change: reach, existence, ownership
        (ALICE, policy.CHANGE, f"{HOME}/f", None),
        (
            BOB,
            policy.CHANGE,
            f"{HOME}/f",
            f"Permission denied: only the owner or a catalog manager may change {HOME}/f",
        ),
        (ALICE, policy.CHANGE, f"{HOME}/missing", f"No such file or directory: {HOME}/missing"),
        (
            ALICE,
            policy.CHOWN,
            f"{HOME}/f",
            f"Permission denied: only managers (FileCatalogManagement) may change the owner of {HOME}/f",
        ),
        (MANAGER, policy.CHOWN, f"{HOME}/f", None),
    ],
)
def test_rule(identity, opClass, path, reason):
    assert check(identity, opClass, path) == reason


def test_search_without_read_lets_known_names_through():
    # 0o711: others may pass through but not list, as POSIX
    assert check(CAROL, policy.READ, f"{HOME}/priv/f", priv=0o711) is None
    assert (
        check(CAROL, policy.READ, f"{HOME}/priv", priv=0o711) == f"Permission denied: no read permission on {HOME}/priv"
    )


def test_write_needs_search_on_the_directory():
    # group rw- : write without search is no write
    assert check(BOB, policy.WRITE, f"{HOME}/shared/new", shared=0o760) == (
        f"Permission denied: no search permission on {HOME}/shared"
    )


def test_chgrp_only_to_a_group_of_the_caller():
    access = policy.PathAccess(ALICE, view())
    assert access.change(f"{HOME}/f", "others") == "Permission denied: alice is not a member of group others"
    assert access.change(f"{HOME}/f", "users") is None
    member = policy.Identity("alice", "users", vo="vo", groups=frozenset({"users", "others"}))
    assert policy.PathAccess(member, view()).change(f"{HOME}/f", "others") is None
    assert policy.PathAccess(MANAGER, view()).change(f"{HOME}/f", "anything") is None


def test_execute_bit():
    access = policy.PathAccess(BOB, view())
    assert access.execute(f"{HOME}/shared") is None
    assert access.execute(f"{HOME}/f") == f"Permission denied: no execute permission on {HOME}/f"


def test_lookup_operations_are_their_own_class():
    assert policy.classifyOperation("exists") == policy.LOOKUP
    assert policy.classifyOperation("isDirectory") == policy.LOOKUP
    assert policy.classifyOperation("listDirectory") == policy.READ


@pytest.mark.parametrize(
    "canStat, canRead, fields",
    [
        (True, True, {"Owner", "OwnerGroup", "Mode", "CreationDate", "ModificationDate", "Type", "Size", "GUID"}),
        (True, False, {"Owner", "OwnerGroup", "Mode", "CreationDate", "ModificationDate", "Type"}),
        (False, True, {"Type"}),
        (False, False, {"Type"}),
    ],
)
def test_visible_entry(canStat, canRead, fields):
    metadata = dict.fromkeys(["Owner", "OwnerGroup", "Mode", "CreationDate", "ModificationDate", "Size", "GUID"], 1)
    assert set(policy.visibleEntry({**metadata, "Type": "File"}, canStat, canRead)) == fields

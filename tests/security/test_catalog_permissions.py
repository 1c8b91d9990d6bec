"""Catalog permissions as other users try them, over the real FileCatalog service of a README-like site.

alice and bob share the group ``dirac_user``, carol is in ``ext_user``, adam is the catalog
manager. Each test asserts what the caller sees (the refusal and its reason) and, through
the manager's eyes, that nothing was written or changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import catalog_site  # noqa: E402

ALICE, BOB = catalog_site.HOMES["alice"], catalog_site.HOMES["bob"]
site = catalog_site.site


def info(guid: str = "", se: str = "SE-A", pfn: str = "") -> dict:
    return {"SE": se, "Size": 5, "Checksum": "0a0b0c0d", "GUID": guid, "PFN": pfn}


def value(result: dict) -> dict:
    assert result["OK"], result
    return result["Value"]


def refused(result: dict, path: str) -> str:
    """The reason ``path`` failed (asserting it did, and that nothing succeeded for it)."""
    answer = value(result)
    assert path not in answer["Successful"], answer
    return answer["Failed"][path]


def snapshot(site, directory: str) -> dict:
    """Everything the manager sees below ``directory``: listings, metadata and replicas."""
    admin = site.admin
    listing = value(admin.listDirectory(directory, True))["Successful"][directory]
    subdirs = {path: snapshot(site, path) for path in listing["SubDirs"]}
    return {"listing": listing, "subdirs": subdirs}


@pytest.fixture(scope="module")
def private_tree(site):
    """alice's ``priv`` (0700) holding a file and a sub-directory with a file."""
    alice = site.client("alice")
    files = {f"{ALICE}/priv/secret": info("G-SECRET", pfn="s3://host/bucket/secret"), f"{ALICE}/priv/sub/deep": info()}
    assert value(alice.addFile(files))["Successful"] == dict.fromkeys(files, True)
    assert value(alice.changePathMode({f"{ALICE}/priv": 0o700}))["Successful"]
    return files


READ_CALLS = ["getFileMetadata", "getReplicas", "getFileSize", "exists", "isFile", "isDirectory"]


@pytest.mark.parametrize("caller", ["bob", "carol"])
def test_private_directory_hides_and_protects_everything_inside(site, private_tree, caller):
    client = site.client(caller)
    before = snapshot(site, ALICE)
    expected = f"Permission denied: no search permission on {ALICE}/priv"
    for lfn in [f"{ALICE}/priv/secret", f"{ALICE}/priv/sub/deep", f"{ALICE}/priv/sub"]:
        for method in READ_CALLS:
            assert refused(getattr(client, method)(lfn), lfn) == expected, (method, lfn)
    for method in ["listDirectory", "getDirectoryMetadata"]:
        assert refused(getattr(client, method)(f"{ALICE}/priv/sub"), f"{ALICE}/priv/sub") == expected
    # what the S3 gateway asks before signing a GET, PUT or DELETE URL
    lfn = f"{ALICE}/priv/secret"
    for opType in ["Read", "getFile", "Write", "Delete", "exists"]:
        assert value(client.hasAccess([lfn], opType))["Successful"] == {lfn: False}, opType
    assert value(client.getPathPermissions(lfn))["Successful"][lfn] == {
        "Read": False,
        "Write": False,
        "Execute": False,
    }
    # writing, removing and changing inside are refused with the same reason
    writes = [
        client.addFile({f"{ALICE}/priv/new": info()}),
        client.createDirectory(f"{ALICE}/priv/newdir"),
        client.addReplica({lfn: {"SE": "SE-B"}}),
        client.removeReplica({lfn: {"SE": "SE-A"}}),
        client.removeFile(lfn),
        client.changePathMode({lfn: 0o666}),
        client.changePathGroup({lfn: "ext_user"}),
    ]
    for result in writes:
        failed = value(result)["Failed"]
        assert set(failed.values()) == {expected} and not value(result)["Successful"], result
    assert snapshot(site, ALICE) == before
    # the owner still has everything
    assert value(site.client("alice").getReplicas(lfn))["Successful"] == {lfn: {"SE-A": "s3://host/bucket/secret"}}


def test_unreachable_names_answer_alike_whether_they_exist_or_not(site, private_tree):
    bob = site.client("bob")
    existing, missing = f"{ALICE}/priv/secret", f"{ALICE}/priv/no-such-file"
    calls = {
        "exists": lambda lfn: bob.exists(lfn),
        "getFileMetadata": lambda lfn: bob.getFileMetadata(lfn),
        "changePathMode": lambda lfn: bob.changePathMode({lfn: 0o700}),
        "removeFile": lambda lfn: bob.removeFile(lfn),
        "addFile": lambda lfn: bob.addFile({lfn: info()}),
    }
    for name, call in calls.items():
        assert refused(call(existing), existing) == refused(call(missing), missing), name


def test_creating_or_removing_needs_write_and_search_on_the_directory(site):
    alice, bob = site.client("alice"), site.client("bob")
    modes = {"no-search": 0o760, "no-write": 0o750, "shared": 0o770}
    value(alice.addFile({f"{ALICE}/{name}/alices": info() for name in modes}))
    assert not value(alice.changePathMode({f"{ALICE}/{name}": mode for name, mode in modes.items()}))["Failed"]

    reason = refused(bob.addFile({f"{ALICE}/no-search/bobs": info()}), f"{ALICE}/no-search/bobs")
    assert reason == f"Permission denied: no search permission on {ALICE}/no-search"
    assert refused(bob.removeFile(f"{ALICE}/no-search/alices"), f"{ALICE}/no-search/alices") == reason
    reason = refused(bob.addFile({f"{ALICE}/no-write/bobs": info()}), f"{ALICE}/no-write/bobs")
    assert reason == f"Permission denied: no write permission on {ALICE}/no-write"
    reason = refused(bob.createDirectory(f"{ALICE}/no-write/d"), f"{ALICE}/no-write/d")
    assert reason == f"Permission denied: no write permission on {ALICE}/no-write"
    # with w and x on the directory (group 7), bob creates, and removes what is in it (POSIX)
    assert value(bob.addFile({f"{ALICE}/shared/bobs": info()}))["Successful"]
    assert value(bob.removeFile(f"{ALICE}/shared/alices"))["Successful"]
    # carol (another group) gets the others' bits: nothing, not even search
    reason = refused(site.client("carol").addFile({f"{ALICE}/shared/carols": info()}), f"{ALICE}/shared/carols")
    assert reason == f"Permission denied: no search permission on {ALICE}/shared"

    present = value(site.admin.exists([f"{ALICE}/{name}/{who}" for name in modes for who in ("alices", "bobs")]))
    assert {path for path, there in present["Successful"].items() if there} == {
        f"{ALICE}/no-search/alices",
        f"{ALICE}/no-write/alices",
        f"{ALICE}/shared/bobs",
    }


def test_listing_shows_only_what_the_caller_may_read(site):
    alice = site.client("alice")
    public, private = f"{ALICE}/mixed/public", f"{ALICE}/mixed/private"
    value(alice.addFile({public: info("G-PUBLIC"), private: info("G-PRIVATE", pfn="s3://host/bucket/hidden-pfn")}))
    assert value(alice.changePathMode({private: 0o600}))["Successful"]

    listing = value(site.client("bob").listDirectory(f"{ALICE}/mixed", True))["Successful"][f"{ALICE}/mixed"]
    assert listing["Files"][public]["MetaData"]["GUID"] == "G-PUBLIC"
    assert listing["Files"][public]["Replicas"] == {"SE-A": ""}
    hidden = listing["Files"][private]
    assert "Replicas" not in hidden
    assert set(hidden["MetaData"]) == {"Owner", "OwnerGroup", "Mode", "CreationDate", "ModificationDate", "Type"}
    assert "G-PRIVATE" not in repr(listing) and "hidden-pfn" not in repr(listing)
    # the owner sees it all
    own = value(alice.listDirectory(f"{ALICE}/mixed", True))["Successful"][f"{ALICE}/mixed"]
    assert own["Files"][private]["MetaData"]["GUID"] == "G-PRIVATE"

    # r without x on the directory (others r--): names only, as ls without search permission
    assert value(alice.changePathMode({f"{ALICE}/mixed": 0o754}))["Successful"]
    names = value(site.client("carol").listDirectory(f"{ALICE}/mixed", True))["Successful"][f"{ALICE}/mixed"]
    assert names["Files"] == {public: {"MetaData": {"Type": "File"}}, private: {"MetaData": {"Type": "File"}}}


def test_registering_another_files_guid_is_refused(site):
    alice, bob = site.client("alice"), site.client("bob")
    original = f"{ALICE}/guid/original"
    assert value(alice.addFile({original: info("GUID-OF-ALICE")}))["Successful"]
    before = value(alice.getFileMetadata(original))["Successful"][original]

    copy = f"{BOB}/guid/copy"
    reason = refused(bob.addFile({copy: info("GUID-OF-ALICE")}), copy)
    assert reason == "GUID GUID-OF-ALICE is already registered for another file"
    twins = {f"{BOB}/guid/twin1": info("GUID-TWIN"), f"{BOB}/guid/twin2": info("GUID-TWIN")}
    failed = value(bob.addFile(twins))["Failed"]
    assert set(failed) == set(twins) and all("given to 2 LFNs" in text for text in failed.values())

    assert value(site.admin.exists([copy, *twins]))["Successful"] == dict.fromkeys([copy, *twins], False)
    assert value(alice.getFileMetadata(original))["Successful"][original] == before
    # re-registering the same file with its own GUID (a new replica) is still fine
    assert value(alice.addFile({original: info("GUID-OF-ALICE", se="SE-B")}))["Successful"]


def test_group_and_owner_changes_follow_membership(site):
    alice, bob = site.client("alice"), site.client("bob")
    lfn = f"{BOB}/changes/f"
    assert value(bob.addFile({lfn: info()}))["Successful"]
    assert refused(bob.changePathGroup({lfn: "ext_user"}), lfn) == (
        "Permission denied: bob is not a member of group ext_user"
    )
    assert "only the owner" in refused(alice.changePathMode({lfn: 0o777}), lfn)
    assert "only managers" in refused(bob.changePathOwner({lfn: "alice"}), lfn)
    meta = value(site.admin.getFileMetadata(lfn))["Successful"][lfn]
    assert (meta["Owner"], meta["OwnerGroup"], meta["Mode"]) == ("bob", "dirac_user", 0o644)
    # alice may give her own file to another of her groups (the Registry says she is in dirac_admin)
    own = f"{ALICE}/changes/f"
    assert value(alice.addFile({own: info()}))["Successful"]
    assert value(alice.changePathGroup({own: "dirac_admin"}))["Successful"] == {own: True}


def test_names_with_control_characters_are_refused(site):
    bob = site.client("bob")
    for name in ["a\nOK /testvo/fake", "tab\there", "esc\x1b[2J", "nul\x00", "line\u2028sep", "bidi\u202etxt.exe"]:
        lfn = f"{BOB}/{name}"
        assert "control characters" in refused(bob.addFile({lfn: info()}), lfn)
    assert (
        value(site.admin.listDirectory(BOB))["Successful"]
        .get(BOB, {"Files": {}})["Files"]
        .keys()
        .isdisjoint({f"{BOB}/a\nOK /testvo/fake"})
    )


def test_re_registering_a_file_one_may_not_read_tells_nothing_about_it(site):
    # group may write the file but not read it: re-registering it must not compare (and so reveal) its metadata
    alice, bob = site.client("alice"), site.client("bob")
    lfn = f"{ALICE}/dropzone/blind"
    value(alice.addFile({lfn: info("G-BLIND")}))
    assert not value(alice.changePathMode({f"{ALICE}/dropzone": 0o775, lfn: 0o620}))["Failed"]
    for guess in (info("G-BLIND"), {**info("G-BLIND"), "Size": 6}):
        assert refused(bob.addFile({lfn: guess}), lfn) == f"Permission denied: no read permission on {lfn}"
    assert value(site.admin.getReplicas(lfn))["Successful"] == {lfn: {"SE-A": ""}}

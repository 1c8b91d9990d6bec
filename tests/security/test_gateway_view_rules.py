"""Unit tests of what the gateway shows of the store (``S3GatewayView``), over a catalog of fixed answers.

The integration tests (``test_gateway_listing.py``) run the same rules against real services; here
each rule is pinned on its own: who reads an unregistered object, which listed entries are shown
and with which fields, which keys can stand for an LFN.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from DIRAC.DataManagementSystem.Service.S3GatewayView import NOT_REGISTERED, _lfnOf, _visible, objectReads
from DIRAC.Resources.Storage.S3.Methods import READ_FILE, WRITE_FILE

UNREACHABLE = "permission check failed: Permission denied: no search permission on /vo/closed"


class FixedCatalog:
    """The two questions the gateway asks, answered from sets (what ``CallerCatalog`` answers)."""

    def __init__(
        self, registered: set[str], readable: set[str], creatable: set[str], unreachable: frozenset[str] = frozenset()
    ):
        self._registered, self._unreachable = registered, unreachable
        self._allowed = {READ_FILE: readable, WRITE_FILE: creatable}
        self.asked: list[tuple[str, list[str]]] = []

    def registered(self, lfns: list[str], method: str = "exists") -> dict:
        self.asked.append((method, lfns))
        return {lfn: UNREACHABLE if lfn in self._unreachable else lfn in self._registered for lfn in lfns}

    def allowed(self, lfns: list[str], opType: str) -> dict:
        self.asked.append((opType, lfns))
        return {lfn: True if lfn in self._allowed[opType] else "permission denied" for lfn in lfns}


def test_an_unregistered_object_is_read_only_by_who_may_create_it():
    catalog = FixedCatalog(
        registered={"/vo/d/open", "/vo/d/private"},
        readable={"/vo/d/open", "/vo/d/dark-but-readable-dir"},
        creatable={"/vo/d/mine"},
        unreachable={"/vo/closed/f"},
    )
    lfns = ["/vo/d/open", "/vo/d/private", "/vo/d/mine", "/vo/d/dark-but-readable-dir", "/vo/closed/f"]
    assert objectReads(catalog, lfns) == {
        "/vo/d/open": True,
        "/vo/d/private": "permission denied",
        "/vo/d/mine": True,
        "/vo/d/dark-but-readable-dir": NOT_REGISTERED,
        "/vo/closed/f": UNREACHABLE,
    }
    assert catalog.asked[0] == ("isFile", lfns), "a registered directory is not a file to read"


def test_a_listing_shows_registered_names_readable_sizes_and_only_creatable_dark_entries():
    catalog = FixedCatalog(
        registered={"/vo/d/open", "/vo/d/private", "/vo/d/sub"},
        readable={"/vo/d/open"},
        creatable={"/vo/d/mine", "/vo/d/minedir"},
    )
    files = ["/vo/d/mine", "/vo/d/open", "/vo/d/private", "/vo/d/theirs"]
    dirs = ["/vo/d/sub", "/vo/d/minedir", "/vo/d/theirdir"]
    shownFiles, shownDirs = _visible(catalog, files, dirs)
    assert shownFiles == {"/vo/d/open": True, "/vo/d/private": False, "/vo/d/mine": True}
    assert shownDirs == ["/vo/d/sub", "/vo/d/minedir"]


def test_a_listing_shows_nothing_the_catalog_cannot_look_up():
    """Without ``x`` on the directory its entries cannot be looked up: none is shown."""
    entries = ["/vo/d/a", "/vo/d/b"]
    catalog = FixedCatalog(registered=set(entries), readable=set(entries), creatable=set(), unreachable=set(entries))
    assert _visible(catalog, entries[:1], entries[1:]) == ({}, [])


@pytest.mark.parametrize(
    "key,isPrefix,lfn",
    [
        ("pre/vo/d/f", False, "/vo/d/f"),
        ("pre/vo/d/sub/", True, "/vo/d/sub"),
        ("pre/vo/d/../f", False, None),
        ("pre/vo/d//f", False, None),
        ("pre/vo/d/bad\nname", False, None),
        ("pre/vo/d/./", True, None),
        ("other/vo/d/f", False, None),
        ("pre/", True, None),
    ],
)
def test_only_keys_an_lfn_can_stand_for_are_listed(key, isPrefix, lfn):
    storage = SimpleNamespace(settings=SimpleNamespace(keyPrefix="pre/"))
    assert _lfnOf(storage, key, isPrefix) == lfn

"""Unit tests of what the gateway shows of the store (``S3GatewayView``), over a catalog of fixed answers.

The integration tests (``test_gateway_listing.py``) run the same rules against real services; here
each rule is pinned on its own: who reads an unregistered object, which listed entries are shown
and with which fields, which keys can stand for an LFN.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from types import SimpleNamespace

import pytest

from DIRAC.DataManagementSystem.Service.S3GatewayView import (
    NOT_REGISTERED,
    PAGES_PER_ANSWER,
    _lfnOf,
    _visible,
    listObjects,
    objectReads,
)
from DIRAC.Resources.Storage.S3.Methods import READ_FILE, WRITE_FILE
from DIRAC.Resources.Storage.S3.Settings import parseS3Settings
from DIRAC.Resources.Storage.S3Storage import _findAll, _findText, _listingPage

UNREACHABLE = "permission check failed: Permission denied: no search permission on /vo/closed"


class FixedCatalog:
    """The two questions the gateway asks, answered from sets (what ``CallerCatalog`` answers)."""

    def __init__(
        self, registered: set[str], readable: set[str], creatable: set[str], unreachable: frozenset[str] = frozenset()
    ):
        self._registered, self._unreachable = registered, unreachable
        self._allowed = {READ_FILE: readable, WRITE_FILE: creatable}
        self.asked: list[tuple[str, list[str]]] = []
        self.unanswered = ""

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


S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _s3Page(keys: list[tuple[str, int]], prefixes: list[str] = (), token: str = "") -> bytes:
    """A ListObjectsV2 answer as S3 writes it (namespace, ETag, owner, storage class)."""
    contents = "".join(
        f"<Contents><Key>{key}</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>"
        f'<ETag>"0123456789abcdef0123456789abcdef"</ETag><Size>{size}</Size>'
        "<Owner><ID>alice-id</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>"
        for key, size in keys
    )
    common = "".join(f"<CommonPrefixes><Prefix>{prefix}</Prefix></CommonPrefixes>" for prefix in prefixes)
    more = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return f'<ListBucketResult xmlns="{S3_NS}">{more}{contents}{common}</ListBucketResult>'.encode()


class PagedStorage:
    """An S3 plugin's page reader over canned pages: ``{token: page}``."""

    def __init__(self, pages: dict[str, bytes]):
        options = {"Host": "s3.example.org", "Path": "bucket", "Aws_access_key_id": "k", "Aws_secret_access_key": "s"}
        self.settings = parseS3Settings("SE", options)["Value"]
        self.pages = pages
        self.read: list[str] = []

    def _listPage(self, lfn: str, token: str, maxKeys: int) -> dict:
        self.read.append(token)
        return _listingPage(self.pages[token])


def test_the_listing_document_holds_only_what_the_caller_may_see():
    storage = PagedStorage(
        {"": _s3Page([("vo/d/open", 11), ("vo/d/private", 22), ("vo/d/dark", 33)], ["vo/d/sub/", "vo/d/darkdir/"])}
    )
    catalog = FixedCatalog(
        registered={"/vo/d/open", "/vo/d/private", "/vo/d/sub"}, readable={"/vo/d/open"}, creatable=set()
    )
    document = listObjects(storage, catalog, "/vo/d", "")["Value"]
    root = ElementTree.fromstring(document)
    shown = {_findText(item, "Key"): _findText(item, "Size") for item in _findAll(root, "Contents")}
    assert shown == {"vo/d/open": "11", "vo/d/private": ""}
    assert [_findText(item, "Prefix") for item in _findAll(root, "CommonPrefixes")] == ["vo/d/sub/"]
    assert _findText(root, "IsTruncated") == "false"
    for hidden in ("ETag", "0123456789abcdef", "Owner", "alice-id", "StorageClass", "dark", ">22<"):
        assert hidden not in document, hidden


def test_pages_showing_nothing_are_skipped_up_to_a_bound():
    """A reader's page of dark keys only: the next page is read in the same answer, at most PAGES_PER_ANSWER."""
    pages = {"": _s3Page([("vo/d/dark0", 1)], token="t1")}
    for number in range(1, PAGES_PER_ANSWER + 3):
        pages[f"t{number}"] = _s3Page([(f"vo/d/dark{number}", 1)], token=f"t{number + 1}")
    pages["t2"] = _s3Page([("vo/d/open", 5)], token="t3")
    catalog = FixedCatalog(registered={"/vo/d/open"}, readable={"/vo/d/open"}, creatable=set())
    root = ElementTree.fromstring(listObjects(PagedStorage(pages), catalog, "/vo/d", "")["Value"])
    assert [_findText(item, "Key") for item in _findAll(root, "Contents")] == ["vo/d/open"]
    assert (_findText(root, "IsTruncated"), _findText(root, "NextContinuationToken")) == ("true", "t3")
    storage = PagedStorage(pages)
    root = ElementTree.fromstring(listObjects(storage, catalog, "/vo/d", "t3")["Value"])
    assert _findAll(root, "Contents") == [] and len(storage.read) == PAGES_PER_ANSWER
    assert _findText(root, "NextContinuationToken") == f"t{3 + PAGES_PER_ANSWER}"


def test_a_catalog_that_does_not_answer_fails_the_listing():
    """Never an empty listing because the catalog was down: the caller is told."""

    class SilentCatalog(FixedCatalog):
        def registered(self, lfns, method="exists"):
            self.unanswered = "connection refused"
            return dict.fromkeys(lfns, "permission check failed, nothing signed: connection refused")

    catalog = SilentCatalog(registered=set(), readable=set(), creatable=set())
    result = listObjects(PagedStorage({"": _s3Page([("vo/d/f", 1)])}), catalog, "/vo/d", "")
    assert not result["OK"] and "the file catalog did not answer: connection refused" in result["Message"]

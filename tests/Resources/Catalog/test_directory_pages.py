"""iterDirectoryPages: the walk over listDirectoryPage answers (pure logic, a listing function stands in)."""

from __future__ import annotations

from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Catalog.Utilities import iterDirectoryPages

PATH = "/vo/big"


def pagesOf(names: list[str]):
    """A listDirectoryPage over ``names`` (files of PATH), recording the markers it was asked for."""
    asked: list[str] = []

    def listPage(path, verbose, marker, limit):
        asked.append(marker)
        start = 0 if not marker else names.index(marker[1:]) + 1
        chunk = names[start : start + limit]
        more = start + limit < len(names)
        page = {
            "Files": {f"{path}/{name}": {} for name in chunk},
            "SubDirs": {},
            "Next": "F" + chunk[-1] if more else "",
        }
        return S_OK({"Successful": {path: page}, "Failed": {}})

    return listPage, asked


def test_walks_every_page_once():
    names = [f"f{index:02d}" for index in range(23)]
    listPage, asked = pagesOf(names)
    results = list(iterDirectoryPages(listPage, PATH, False, 5))
    assert len(results) == 5 and asked == ["", "Ff04", "Ff09", "Ff14", "Ff19"]
    seen = [name for result in results for name in result["Value"]["Successful"][PATH]["Files"]]
    assert seen == [f"{PATH}/{name}" for name in names]


def test_stops_at_an_error_or_a_failed_path():
    calls = []

    def broken(path, verbose, marker, limit):
        calls.append(marker)
        return S_ERROR("service down")

    assert [result["OK"] for result in iterDirectoryPages(broken, PATH)] == [False] and calls == [""]

    def denied(path, verbose, marker, limit):
        return S_OK({"Successful": {}, "Failed": {path: "Permission denied"}})

    [result] = list(iterDirectoryPages(denied, PATH))
    assert result["Value"]["Failed"] == {PATH: "Permission denied"}


def test_a_marker_that_does_not_move_ends_the_walk():
    def stuck(path, verbose, marker, limit):
        return S_OK({"Successful": {path: {"Files": {}, "SubDirs": {}, "Next": "Fsame"}}, "Failed": {}})

    results = list(iterDirectoryPages(stuck, PATH))
    assert len(results) == 3 and not results[-1]["OK"] and "repeated a page" in results[-1]["Message"]

"""The choice of the copy way per file (``CopyWays``), the checks of ``copyFromSE``, the command's helpers.

The plugins here are small stand-ins that answer per file as the agreed plugin
interface does (``canCopyServerSideFrom``, ``copyServerSide``, ``copyStreamed``):
the logic under test is which way is asked, in which order, and what happens
to each answer. The real ways are tested against real servers in ``test_replication.py``.
"""

from __future__ import annotations

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.Resources.Storage.CopyWays import SERVER_SIDE, STREAMED, copyByTheWays
from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import file_se_cfg, se_cfg

LFN = "/vo/user/a/alice/f.dat"
OTHER = "/vo/user/a/alice/g.dat"
ITEM = {"Size": 10, "Checksum": "0badc0de"}


class Plugin:
    """A plugin stand-in: ``serverSide`` / ``streamed`` are {lfn: answer} (None: the way is absent)."""

    def __init__(self, name="S3", serverSide=None, streamed=None, sameService=True):
        self.pluginName = name
        self.serverSide, self.streamed, self.sameService = serverSide, streamed, sameService
        self.calls: list[tuple[str, list[str]]] = []

    def canCopyServerSideFrom(self, source):
        return self.serverSide is not None and self.sameService

    def copyServerSide(self, source, items):
        self.calls.append((SERVER_SIDE, list(items)))
        if isinstance(self.serverSide, Exception):
            raise self.serverSide
        return {lfn: self.serverSide[lfn] for lfn in items if lfn in self.serverSide}

    def copyStreamed(self, source, items):
        self.calls.append((STREAMED, list(items)))
        return {lfn: self.streamed[lfn] for lfn in items if lfn in self.streamed}


CANNOT = S_ERROR(DErrno.EPROTONOSUPPORT, "rclone answers UploadPartCopy without an ETag")


def test_server_side_first_then_streamed_only_for_what_it_cannot_copy():
    destination = Plugin(serverSide={LFN: S_OK(10), OTHER: CANNOT}, streamed={OTHER: S_OK(10)})
    results = copyByTheWays([destination], [Plugin()], {LFN: ITEM, OTHER: ITEM})
    assert results[LFN] == S_OK({"Size": 10, "Way": SERVER_SIDE})
    assert results[OTHER] == S_OK({"Size": 10, "Way": STREAMED})
    assert destination.calls == [(SERVER_SIDE, [LFN, OTHER]), (STREAMED, [OTHER])]


def test_a_real_failure_is_final_and_names_its_way():
    broken = S_ERROR(DErrno.EBADCKS, "source changed during the copy; the copy was removed")
    destination = Plugin(serverSide={LFN: broken}, streamed={LFN: S_OK(10)})
    result = copyByTheWays([destination], [Plugin()], {LFN: ITEM})[LFN]
    assert not result["OK"] and DErrno.cmpError(result, DErrno.EBADCKS)
    assert result["Way"] == SERVER_SIDE and "source changed" in result["Message"]
    assert destination.calls == [(SERVER_SIDE, [LFN])], "no other way after a real failure"


def test_other_services_go_straight_to_the_streamed_copy():
    destination = Plugin(serverSide={LFN: S_OK(10)}, streamed={LFN: S_OK(10)}, sameService=False)
    assert copyByTheWays([destination], [Plugin()], {LFN: ITEM})[LFN]["Value"]["Way"] == STREAMED
    assert destination.calls == [(STREAMED, [LFN])]


def test_no_way_says_why_with_eprotonosupport():
    destination = Plugin(serverSide={LFN: CANNOT}, streamed={LFN: CANNOT})
    result = copyByTheWays([destination], [Plugin("File")], {LFN: ITEM})[LFN]
    assert DErrno.cmpError(result, DErrno.EPROTONOSUPPORT)
    assert "server-side copy File -> S3" in result["Message"] and "streamed copy File -> S3" in result["Message"]

    class Bare:  # a plugin without either way
        pluginName = "Other"

    bare = copyByTheWays([Bare()], [Bare()], {LFN: ITEM})[LFN]
    assert DErrno.cmpError(bare, DErrno.EPROTONOSUPPORT) and "no plugin pair" in bare["Message"]


def test_the_next_plugin_pair_is_tried_when_one_cannot():
    first = Plugin("S3", serverSide={LFN: CANNOT}, streamed={LFN: CANNOT})
    second = Plugin("File", streamed={LFN: S_OK(10)})
    assert copyByTheWays([first, second], [Plugin()], {LFN: ITEM})[LFN]["Value"]["Way"] == STREAMED
    assert second.calls == [(STREAMED, [LFN])]


def test_a_plugin_that_raises_or_forgets_a_file_fails_those_files_only():
    raising = Plugin(serverSide=RuntimeError("bug"))
    assert copyByTheWays([raising], [Plugin()], {LFN: ITEM})[LFN]["Errno"] == DErrno.EEEXCEPTION
    forgetful = Plugin(serverSide={LFN: S_OK(10)})
    results = copyByTheWays([forgetful], [Plugin()], {LFN: ITEM, OTHER: ITEM})
    assert results[LFN]["OK"] and "no answer for this file" in results[OTHER]["Message"]


# ---------------------------------------------------------------------- StorageElement.copyFromSE


@pytest.fixture
def file_ses(dirac_cfg, tmp_path):
    """FILE-A and FILE-B, plus a source banned for reading and a destination banned for writing."""
    roots = {name: tmp_path / name for name in ("a", "b", "c", "d")}
    for root in roots.values():
        root.mkdir()
    dirac_cfg(
        [
            file_se_cfg("FILE-A", roots["a"]),
            file_se_cfg("FILE-B", roots["b"]),
            se_cfg("NO-READ", {"ReadAccess": "Banned"}, {"File": {"Protocol": "file", "Path": roots["c"]}}),
            se_cfg("NO-WRITE", {"WriteAccess": "Banned"}, {"File": {"Protocol": "file", "Path": roots["d"]}}),
        ]
    )
    return roots


@pytest.mark.parametrize(
    ("source", "destination", "words"), [("NO-READ", "FILE-B", "read"), ("FILE-A", "NO-WRITE", "write")]
)
def test_copy_from_se_needs_read_at_the_source_and_write_at_the_destination(file_ses, source, destination, words):
    result = StorageElement(destination).copyFromSE(StorageElement(source), {LFN: ITEM})
    assert not result["OK"] and DErrno.cmpError(result, DErrno.ESENOTALLOWED)
    assert f"banned for {words}" in result["Message"] and "nothing was done" in result["Message"]
    assert [path for root in file_ses.values() for path in root.rglob("*")] == []


def test_copy_from_se_refuses_itself_and_a_name(file_ses):
    se = StorageElement("FILE-A")
    assert "both FILE-A" in se.copyFromSE(se, {LFN: ITEM})["Message"]
    assert DErrno.cmpError(se.copyFromSE("FILE-B", {LFN: ITEM}), DErrno.ETYPE)


def test_replicate_file_needs_a_source_se_and_keeps_the_lfn(file_ses):
    destination = StorageElement("FILE-B")
    assert DErrno.cmpError(destination.replicateFile({LFN: "file://elsewhere/x"}), DErrno.EPROTONOSUPPORT)
    wrong = destination.replicateFile({LFN: f"file://localhost{file_ses['a']}/vo/other.dat"}, sourceSE="FILE-A")
    assert "a replica keeps its LFN" in wrong["Value"]["Failed"][LFN], wrong
    assert DErrno.cmpError(destination.replicateFile(LFN, sourceSE=7), DErrno.ETYPE)
    assert not destination.replicateFile(LFN, sourceSE="NO-SUCH-SE")["OK"]
    missing = destination.replicateFile(LFN, sourceSE="FILE-A")
    assert "source FILE-A" in missing["Value"]["Failed"][LFN], missing


def test_copy_from_se_refuses_bad_items_per_file(file_ses):
    """A bad entry fails alone with its reason; one without adler32 is EPROTONOSUPPORT (a local copy may do it)."""
    items = {LFN: {"Size": -1, "Checksum": "1"}, OTHER: {"Size": 1}, "relative": ITEM}
    answers = StorageElement("FILE-B").copyFromSEPerFile(StorageElement("FILE-A"), items)["Value"]
    assert DErrno.cmpError(answers[LFN], DErrno.EINVAL) and "Size" in answers[LFN]["Message"]
    assert DErrno.cmpError(answers[OTHER], DErrno.EPROTONOSUPPORT) and "no adler32" in answers[OTHER]["Message"]
    assert DErrno.cmpError(answers["relative"], DErrno.EINVAL)
    assert DErrno.cmpError(StorageElement("FILE-B").copyFromSE(StorageElement("FILE-A"), [LFN]), DErrno.ETYPE)

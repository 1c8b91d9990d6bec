"""``dirac-dms-replicate-lfn``: the way and rate per LFN, a list in parallel behind one bar, the exit code.

The command runs in this process against the SEs of ``test_replication`` (real
S3 servers, a File SE, a real catalog DB); only its DataManager is the test's.
"""

from __future__ import annotations

import re
import threading

import pytest
from test_replication import ALICE, HOME, makeWays

from catalog_fixtures import DBCatalog
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.scripts import _common, dirac_dms_replicate_lfn
from DIRAC.Resources.Storage.CopyWays import SERVER_SIDE, STREAMED

RATE = r"\d+\.\d\d MB in \d+\.\d\d s, (\d+\.\d|-) MB/s"


@pytest.fixture
def ways(rclone_s3_server, moto_server, dirac_cfg, tmp_path):
    environment = makeWays(rclone_s3_server, moto_server, dirac_cfg, tmp_path)
    yield environment
    environment.db.close()


@pytest.fixture
def command(ways, monkeypatch, capsys):
    """Run the command with ``manager`` (default: alice's DataManager): (exit code, stdout lines, stderr)."""

    def run(*argv: str, manager: DataManager | None = None) -> tuple[int, list[str], str]:
        chosen = manager or DataManager(fileCatalog=DBCatalog(ways.db, ALICE))
        monkeypatch.setattr(_common, "makeDataManager", lambda: chosen)
        capsys.readouterr()
        code = dirac_dms_replicate_lfn.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out.splitlines(), captured.err

    return run


def test_one_lfn_prints_its_way_and_rate(ways, command):
    lfn = f"{HOME}/cmd/one.dat"
    ways.put(lfn, "S3-A")
    code, lines, err = command(lfn, "S3-B")
    assert code == 0, (lines, err)
    assert re.fullmatch(rf"OK {re.escape(lfn)} {SERVER_SIDE}, {RATE}", lines[0]), lines
    assert f"replicated 1 of 1 LFNs to S3-B (1 {SERVER_SIDE})" in err
    code, lines, _err = command(lfn, "S3-OTHER", "S3-A")
    assert code == 0 and re.fullmatch(rf"OK {re.escape(lfn)} {STREAMED}, {RATE}", lines[0]), lines
    code, lines, _err = command(lfn, "FILE-A", "", str(ways.tmp / "cache"))
    assert code == 0 and re.fullmatch(rf"OK {re.escape(lfn)} local copy, {RATE}", lines[0]), lines
    code, lines, _err = command(lfn, "S3-B")
    assert lines == [f"OK {lfn} already there, nothing copied"]
    ways.assertAgreement()


class OverlapCheckingManager(DataManager):
    """alice's DataManager whose first two calls wait for each other: they can only meet if run at once."""

    def __init__(self, db):
        super().__init__(fileCatalog=DBCatalog(db, ALICE))
        self.meeting = threading.Barrier(2, timeout=30)
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def replicateAndRegister(self, lfn, *args, **kwargs):
        with self.lock:
            self.calls.append(list(lfn))
            first = len(self.calls) <= 2
        if first:
            self.meeting.wait()
        return super().replicateAndRegister(lfn, *args, **kwargs)


def test_a_list_runs_in_parallel_behind_one_progress_bar(ways, command):
    lfns = [f"{HOME}/cmd/list-{n}.dat" for n in range(6)]
    for n, lfn in enumerate(lfns):
        ways.put(lfn, "S3-A" if n % 2 else "FILE-A", size=20000 + n, seed=n)
    listing = ways.tmp / "lfns.txt"
    listing.write_text("\n".join(lfns) + "\n")
    manager = OverlapCheckingManager(ways.db)
    code, lines, err = command(str(listing), "S3-B", "--progress", "-j", "3", manager=manager)
    assert code == 0, (lines, err)
    assert sorted(lfn for call in manager.calls for lfn in call) == sorted(lfns) and len(manager.calls) > 1
    assert [line.split()[1] for line in lines] == lfns, "one line per LFN, in the list's order"
    ways_ = {line.split()[1]: line.split()[2] + " " + line.split()[3].rstrip(",") for line in lines}
    assert ways_ == {lfn: SERVER_SIDE if n % 2 else STREAMED for n, lfn in enumerate(lfns)}
    # tqdm redraws its one line with carriage returns (the last frame may be drawn twice, by the
    # last update and by close): one bar is one output line, whose last frame is complete
    bars = [line for line in err.split("\n") if "replicate to S3-B:" in line]
    assert len(bars) == 1, f"one bar: {err!r}"
    assert "100%" in bars[0].split("\r")[-1] and "6/6" in bars[0] and "MB/s" in bars[0]
    assert f"replicated 6 of 6 LFNs to S3-B (3 {SERVER_SIDE}, 3 {STREAMED})" in err.splitlines()[-1]
    ways.assertAgreement()


def test_a_failure_exits_1_saying_what_was_left_and_what_to_run(ways, command):
    good, missing = f"{HOME}/cmd/good.dat", f"{HOME}/cmd/missing.dat"
    ways.put(good, "S3-A")
    listing = ways.tmp / "lfns.txt"
    listing.write_text(f"{good}\n{missing}\n")
    code, lines, err = command(str(listing), "S3-B", "--no-progress")
    assert code == 1
    assert lines[0].startswith(f"OK {good} {SERVER_SIDE}") and lines[1].startswith(f"FAILED {missing} ")
    assert "No such file" in lines[1]
    assert "replicated 1 of 2 LFNs" in err and "1 failed: fix the cause above, then run the same command again" in err
    assert "%|" not in err, "no bar when asked not to"
    ways.assertAgreement()


def test_nothing_done_exits_2(ways, command):
    lfn = f"{HOME}/cmd/x.dat"
    code, lines, err = command(lfn, "NO-SUCH-SE")
    assert code == 2 and lines == [] and "NO-SUCH-SE" in err
    listing = ways.tmp / "two.txt"
    listing.write_text(f"{lfn}\n{lfn}.2\n")
    code, lines, err = command(str(listing), "NO-SUCH-SE", "-j", "2")
    assert code == 2 and lines == [], "every parallel call failed as a whole: nothing was done"


def test_help_explains_the_three_ways_and_the_exit_status(capsys):
    with pytest.raises(SystemExit) as exit_:
        dirac_dms_replicate_lfn.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for words in ("server-side copy", "streamed copy", "local copy", "LOCAL_CACHE", "exit status", "MB/s", "-j N"):
        assert words in text, words
    with pytest.raises(SystemExit):
        dirac_dms_replicate_lfn.main(["-j", "0", "/a", "SE"])


def test_a_list_with_no_lfn_says_so_without_a_traceback(ways, command):
    listing = ways.tmp / "empty.txt"
    listing.write_text("# nothing to copy yet\n\n")
    code, lines, err = command(str(listing), "S3-B", "-j", "4")
    assert (code, lines) == (0, []), err
    assert "Traceback" not in err and "replicated 0 of 0 LFNs" in err, err

"""An LFN cannot forge output lines of the ``dirac-dms-*`` commands: one LFN, one line, always.

A name holding a newline (or a terminal escape) is refused by the catalog, and whatever a
command prints (LFN, detail, reason, from any catalog or storage) has its non-printable
characters escaped, so a script reading ``OK <lfn>`` lines cannot be fooled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import catalog_site  # noqa: E402

from DIRAC.Core.Utilities.ReturnValues import S_OK  # noqa: E402
from DIRAC.DataManagementSystem.scripts import _common  # noqa: E402

site = catalog_site.site
BIN = Path(sys.executable).parent
FORGED = "\nOK /testvo/user/a/alice/fake 5 bytes"


def test_printable_escapes_every_control_character():
    assert _common.printable("/vo/plain-é") == "/vo/plain-é"
    assert _common.printable(f"/vo/x{FORGED}") == "/vo/x\\nOK /testvo/user/a/alice/fake 5 bytes"
    assert _common.printable("a\tb\rc\x1b[2Jd\u2028e\x00") == "a\\tb\\rc\\x1b[2Jd\\u2028e\\x00"


def test_report_prints_one_line_per_lfn_whatever_the_names(capsys):
    bad = f"/vo/bad{FORGED}"
    result = S_OK({"Successful": {"/vo/good": f"detail{FORGED}"}, "Failed": {bad: f"reason{FORGED}"}})
    assert _common.report(result, str) == _common.EXIT_FAILED_ITEMS
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert [line.split()[0] for line in lines] == ["OK", "FAILED"]
    assert lines[0].startswith("OK /vo/good detail\\nOK ")
    assert lines[1].startswith("FAILED /vo/bad\\nOK ")


def test_command_with_a_newline_in_the_lfn_prints_no_forged_line(site):
    alice = site.client("alice")
    real = f"{catalog_site.HOMES['alice']}/real"
    assert alice.addFile({real: {"SE": "SE-A", "Size": 5, "Checksum": "1", "GUID": "", "PFN": ""}})["OK"]
    env = dict(os.environ)
    env.update(
        DIRACSYSCONFIG=str(site.cfgPath),
        X509_USER_PROXY=site.proxies[("alice", "dirac_user")],
        X509_CERT_DIR=site.env.caDir,
    )
    bad = f"{real}{FORGED}"
    done = subprocess.run(
        [str(BIN / "dirac-dms-lfn-metadata"), real, bad], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"OK {real} ")
    assert lines[1].startswith(f"FAILED {real}\\nOK ") and "control characters" in lines[1]

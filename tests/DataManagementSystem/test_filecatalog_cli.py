"""dirac-dms-filecatalog-cli as a user runs it: the installed command, commands on stdin, a real FileCatalog service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from catalog_fixtures import running_catalog  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402

COMMAND = Path(sys.executable).parent / "dirac-dms-filecatalog-cli"
ALICE_HOME = "/testvo/user/a/alice"


@pytest.fixture(scope="module")
def catalog(test_ca, tmp_path_factory):
    """A FileCatalog service subprocess; the cfg the CLI reads; proxies for alice, bob and alice as admin."""
    with running_catalog(test_ca, tmp_path_factory.mktemp("fccli"), facade=True) as (service, cfgPath, proxies):
        yield {"service": service, "cfg": cfgPath, "proxies": proxies, "ca": test_ca}


def cli(catalog, commands: str, user: str = "alice", group: str = "dirac_user") -> subprocess.CompletedProcess:
    """Run the installed command with ``commands`` on its stdin (a pipe, not a terminal)."""
    env = dict(os.environ)
    env.update(
        DIRACSYSCONFIG=str(catalog["cfg"]),
        X509_USER_PROXY=str(catalog["proxies"][(user, group)]),
        X509_CERT_DIR=str(catalog["ca"].caDir),
    )
    return subprocess.run([str(COMMAND)], input=commands, capture_output=True, text=True, env=env, timeout=60)


def test_user_builds_lists_and_changes_own_tree(catalog):
    alice = FileCatalogClient(url=catalog["service"].url(), proxyLocation=catalog["proxies"][("alice", "dirac_user")])
    lfn = f"{ALICE_HOME}/data/run1.root"
    added = alice.addFile({lfn: {"SE": "SE-A", "Size": 1234, "Checksum": "0a0b0c0d", "GUID": "", "PFN": ""}})
    assert added["OK"] and lfn in added["Value"]["Successful"], added

    done = cli(
        catalog,
        "\n".join(
            [
                "pwd",
                f"cd {ALICE_HOME}",
                "pwd",
                "mkdir sub other/deep",
                "ls",
                "cd data",
                "ls -l",
                "ls -l run1.root",
                "chmod 700 ../sub",
                "meta ../sub",
                "chgrp dirac_admin ../sub",
                "meta run1.root",
                "cd ..",
                "ls other",
                "quit",
                "pwd",
            ]
        )
        + "\n",
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    # no prompt noise: the first lines are exactly pwd's answers
    assert lines[:2] == ["/", ALICE_HOME]
    assert lines[2:5] == ["data", "other", "sub"]
    longFile = [line for line in lines if line.endswith(" run1.root")]
    assert len(longFile) == 2, lines
    assert longFile[0] == longFile[1]
    fields = longFile[0].split()
    assert fields[:5] == ["-rw-r--r--", "1", "alice", "dirac_user", "1234"], fields
    subMeta = lines[lines.index(f"{ALICE_HOME}/sub") :]
    assert "  Mode: 700 (drwx------)" in subMeta[:10]
    assert "  Owner: alice" in subMeta[:10]
    fileMeta = lines[lines.index(lfn) :]
    assert "  Size: 1234" in fileMeta and "  Checksum: 0a0b0c0d" in fileMeta
    assert lines[-1] == "deep"  # nothing runs after quit
    subInCatalog = alice.getDirectoryMetadata(f"{ALICE_HOME}/sub")["Value"]["Successful"][f"{ALICE_HOME}/sub"]
    assert (subInCatalog["Mode"], subInCatalog["OwnerGroup"]) == (0o700, "dirac_admin")


def test_denied_commands_say_why_and_the_exit_code_says_so(catalog):
    done = cli(
        catalog,
        f"mkdir {ALICE_HOME}/from-bob\nchown bob {ALICE_HOME}\ncd /nowhere\nchmod 9z9 x\nfrobnicate\npwd\n",
        user="bob",
    )
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert len(errors) == 5, errors
    assert errors[0].startswith("ERROR: mkdir: ") and "Permission denied" in errors[0]
    assert errors[1].startswith("ERROR: chown: ") and "Permission denied" in errors[1]
    assert errors[2].startswith("ERROR: cd: ") and "/nowhere" in errors[2]
    assert errors[3].startswith("ERROR: chmod: ") and "octal" in errors[3]
    assert errors[4].startswith("ERROR: frobnicate: unknown command")
    assert done.stdout.splitlines() == ["/"]  # the shell went on after each failure
    check = cli(catalog, f"ls {ALICE_HOME}\n")
    assert check.returncode == 0 and "from-bob" not in check.stdout.split()


def test_catalog_manager_gives_a_directory_away(catalog):
    done = cli(catalog, "mkdir /testvo/shared\nchown bob /testvo/shared\nmeta /testvo/shared\n", group="dirac_admin")
    assert done.returncode == 0, done.stderr
    assert "  Owner: bob" in done.stdout.splitlines()
    # bob may now write there; alice as a plain user may not
    assert cli(catalog, "mkdir /testvo/shared/b\n", user="bob").returncode == 0
    denied = cli(catalog, "mkdir /testvo/shared/a\n")
    assert denied.returncode == 1 and "Permission denied" in denied.stderr


def test_help_and_usage(catalog):
    done = cli(catalog, "help\nhelp chmod\nls -x\n")
    assert done.returncode == 1
    for name in ("ls", "cd", "pwd", "mkdir", "chown", "chgrp", "chmod", "meta", "quit", "exit"):
        assert name in done.stdout.split()
    assert "EOF" not in done.stdout
    assert "chmod [-R] mode path" in done.stdout
    assert "unknown option -x" in done.stderr
    shown = subprocess.run([str(COMMAND), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "standard input" in shown.stdout


def test_ls_of_a_directory_bigger_than_a_page_prints_every_entry(catalog):
    alice = FileCatalogClient(url=catalog["service"].url(), proxyLocation=catalog["proxies"][("alice", "dirac_user")])
    big = f"{ALICE_HOME}/pages"
    info = {"SE": "SE-A", "Size": 1, "Checksum": "0a0b0c0d", "GUID": "", "PFN": ""}
    names = [f"f{index:04d}" for index in range(2300)]
    assert not alice.addFile({f"{big}/{name}": info for name in names})["Value"]["Failed"]
    assert not alice.createDirectory([f"{big}/zdir", f"{big}/adir"])["Value"]["Failed"]
    done = cli(catalog, f"ls {big}\nls -l {big}\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[: 2 + len(names)] == ["adir", "zdir", *names]  # three pages: subdirectories first, then files
    assert len(lines) == 2 * (2 + len(names)) and lines[-1].endswith(" f2299")

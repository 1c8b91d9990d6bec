"""DIRAC's ``Script`` API: the parsing rules (pure) and scripts written for DIRAC run as processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from DIRAC.Core.Base.Script import CommandLine, UsageError


def test_arguments_are_grouped_as_registered():
    line = CommandLine()
    line.registerArgument("LFN: logical file name")
    line.registerArgument(("SE: storage element", "Site: a site"))
    line.registerArgument(["Dest: destination"], mandatory=False)
    assert line.parse(["/a", "SE-1"]).grouped == ["/a", "SE-1", []]
    parsed = line.parse(["/a", "SE-1", "x", "y", "-d"])
    assert (parsed.arguments, parsed.grouped) == (["/a", "SE-1", "x", "y"], ["/a", "SE-1", ["x", "y"]])
    assert parsed.switches == [("d", "")]
    with pytest.raises(UsageError, match="not all mandatory arguments"):
        line.parse(["/a"])


def test_values_defaults_and_unexpected_arguments():
    line = CommandLine()
    line.registerArgument("Mode: how", values=["fast", "slow"])
    line.registerArgument("Count: how many", mandatory=False, default="3")
    assert line.parse(["fast"]).grouped == ["fast", "3"]
    with pytest.raises(UsageError, match='"medium" does not match the allowed values for Mode'):
        line.parse(["medium"])
    with pytest.raises(UsageError, match="unexpected arguments extra"):
        line.parse(["slow", "4", "extra"])


def test_impossible_registrations_are_refused_as_dirac_does():
    line = CommandLine()
    line.registerArgument("A: a", mandatory=False)
    with pytest.raises(ValueError, match="mandatory argument cannot go after the optional one"):
        line.registerArgument("B: b")
    line = CommandLine()
    line.registerArgument(["A: a"])
    with pytest.raises(ValueError, match="two such arguments"):
        line.registerArgument(["B: b"])
    with pytest.raises(ValueError, match="already defined"):
        CommandLine().registerSwitch("o:", "other=", "clash")
    with pytest.raises(ValueError, match="already defined"):
        CommandLine().registerSwitch("", "cfg=", "clash")
    with pytest.raises(TypeError):
        CommandLine().registerArgument({"A": "a"})


def test_switches_and_unknown_switches():
    line = CommandLine()
    line.registerSwitch("f:", "file=", "a file")
    line.registerSwitch("v", "verbose", "talk")
    parsed = line.parse(["-f", "x.txt", "--verbose", "--cfg", "a.cfg", "-o", "/A/B=c=d", "arg"])
    assert parsed.switches == [("f", "x.txt"), ("verbose", ""), ("cfg", "a.cfg"), ("o", "/A/B=c=d")]
    assert (parsed.cfgFiles, parsed.arguments) == (["a.cfg"], ["arg"])
    with pytest.raises(UsageError, match="option -z not recognized") as caught:
        line.parse(["-z"])
    assert caught.value.exitCode == 2


def test_help_text_from_the_docstring_and_registrations():
    line = CommandLine()
    line.setUsageMessage("Copy things.\n\nExample:\n  $ dirac-x /a\n")
    line.registerSwitch("f:", "file=", "a file")
    line.registerArgument(["LFN: logical file name"])
    text = line.helpText("dirac-x")
    assert text.startswith("\nCopy things.\n")
    assert "  dirac-x [options] ... LFN [LFN]" in text
    assert "  -f  --file <value>" in text and "Options:" in text and "General options:" in text
    assert "  LFN:  logical file name" in text and "$ dirac-x /a" in text


# Scripts as processes

USER_SCRIPT = '''\
"""A user's script in DIRAC's style."""
from DIRAC.Core.Base.Script import Script
from DIRAC import S_OK, S_ERROR, gConfig

seen = []

def setLabel(value):
    if value == "bad":
        return S_ERROR("label bad is refused")
    seen.append(value)
    return S_OK()

Script.registerSwitch("l:", "label=", "a label", setLabel)
Script.registerSwitch("n", "dry-run", "do nothing")
Script.registerArgument("LFN: the file")
Script.registerArgument(["SE: storage elements"], mandatory=False)
switches, args = Script.parseCommandLine(ignoreErrors=False)
lfn, ses = Script.getPositionalArgs(group=True)
print("labels", seen)
print("unprocessed", Script.getUnprocessedSwitches())
print("args", lfn, ses, args)
print("option", gConfig.getValue("/Test/Option", "unset"), gConfig.getValue("/Test/FromCfg", "unset"))
print("relative", gConfig.getValue("/Scripts/user-script/Relative", "unset"))
print("site", gConfig.getValue("/LocalSite/Site", "unset"))
'''

OLD_STYLE = """\
from DIRAC.Core.Base.Script import parseCommandLine
parseCommandLine()
from DIRAC.Core.Base import Script
print("old", Script.getPositionalArgs())
"""

CONSOLE_SCRIPT = '''\
"""Say hello to somebody.

Example:
  $ console-script Bob
"""
from DIRAC.Core.Base.Script import Script


@Script()
def main():
    Script.registerArgument("Name: who to greet")
    Script.parseCommandLine()
    (name,) = Script.getPositionalArgs()
    print("hello", name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''


@pytest.fixture
def scripts(tmp_path):
    for name, text in (
        ("user_script.py", USER_SCRIPT),
        ("old_style.py", OLD_STYLE),
        ("console_script.py", CONSOLE_SCRIPT),
    ):
        (tmp_path / name).write_text(textwrap.dedent(text))
    cfg = tmp_path / "dirac.cfg"
    cfg.write_text("LocalSite\n{\n  Site = Test.Site.org\n}\n")
    (tmp_path / "extra.cfg").write_text("Test\n{\n  FromCfg = fromfile\n}\n")
    return tmp_path


def run(scripts: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DIRACSYSCONFIG=str(scripts / "dirac.cfg"), HOME=str(scripts))
    return subprocess.run(
        [sys.executable, str(scripts / name), *args], capture_output=True, text=True, timeout=60, env=env, cwd=scripts
    )


def test_user_script_in_dirac_style_runs_unchanged(scripts):
    done = run(
        scripts,
        "user_script.py",
        "/vo/f",
        "SE-1",
        "SE-2",
        "-l",
        "one",
        "--label=two",
        "-n",
        "-o",
        "/Test/Option=x=y",
        "-o",
        "Relative=r",
        "--cfg",
        str(scripts / "extra.cfg"),
        "-ddd",
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert "labels ['one', 'two']" in lines
    assert "unprocessed [('n', '')]" in lines
    assert "args /vo/f ['SE-1', 'SE-2'] ['/vo/f', 'SE-1', 'SE-2']" in lines
    assert "option x=y fromfile" in lines
    assert "relative r" in lines
    assert "site Test.Site.org" in lines


def test_user_script_errors_exit_with_the_reason(scripts):
    done = run(scripts, "user_script.py", "/vo/f", "-l", "bad")
    assert done.returncode == 1 and "label bad is refused" in done.stdout + done.stderr
    done = run(scripts, "user_script.py")
    assert done.returncode == 1 and "not all mandatory arguments" in done.stdout + done.stderr
    assert "Usage:" in done.stdout
    done = run(scripts, "user_script.py", "/vo/f", "--nope")
    assert done.returncode == 2 and "option --nope not recognized" in done.stdout + done.stderr
    done = run(scripts, "user_script.py", "/vo/f", "--cfg", str(scripts / "missing.cfg"))
    assert done.returncode == 1 and "missing.cfg" in done.stdout + done.stderr
    done = run(scripts, "user_script.py", "/vo/f", "-o", "NoValue")
    assert done.returncode == 1 and "-o expects Option=value" in done.stdout + done.stderr


def test_help_lists_switches_and_arguments(scripts):
    done = run(scripts, "user_script.py", "-h")
    assert done.returncode == 0
    assert "  -l  --label <value>" in done.stdout and "  -n  --dry-run" in done.stdout
    assert "LFN [SE [SE]]" not in done.stdout and "LFN SE [SE]" in done.stdout
    assert "  SE:   storage elements (optional)" in done.stdout


def test_old_module_functions_and_the_decorator(scripts):
    done = run(scripts, "old_style.py", "a", "b")
    assert (done.returncode, done.stdout.strip()) == (0, "old ['a', 'b']"), done.stderr
    done = run(scripts, "console_script.py", "Bob")
    assert (done.returncode, done.stdout.strip()) == (0, "hello Bob"), done.stderr
    done = run(scripts, "console_script.py", "--help")
    assert done.returncode == 0 and "Say hello to somebody." in done.stdout and "$ console-script Bob" in done.stdout
    assert "  console-script [options] ... Name" in done.stdout

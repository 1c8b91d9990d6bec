"""``DIRAC.Core.Utilities.File``: DIRAC's helpers with DIRAC's signatures and returns, safe where DIRAC is not."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

import pytest

from DIRAC.Core.Utilities.File import (
    checkGuid,
    convertSizeUnits,
    generateGuid,
    getCommonPath,
    getGlobbedFiles,
    getGlobbedTotalSize,
    getMD5ForFiles,
    getSize,
    makeGuid,
    mkDir,
    mkLink,
    secureOpenForWrite,
)


def test_size_and_units(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1500)
    assert getSize(path) == 1500 and getSize(str(path)) == 1500
    assert getSize(tmp_path / "missing") == -1
    assert convertSizeUnits(1024, "B", "kB") == 1.0
    assert convertSizeUnits(1, "MB", "kB") == 1024.0
    assert convertSizeUnits("2", "GB", "MB") == 2048.0
    assert convertSizeUnits("two", "GB", "MB") == -sys.maxsize
    assert convertSizeUnits(1, "XB", "MB") == -sys.maxsize


def test_mkdir_and_mklink(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    assert mkDir(deep) is None and deep.is_dir()
    mkDir(deep)  # already there: fine
    mkDir(tmp_path / "m", 0o700)
    assert stat.S_IMODE(os.stat(tmp_path / "m").st_mode) & 0o077 == 0
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        mkDir(tmp_path / "file")
    link = str(tmp_path / "link")
    mkLink(str(deep), link)
    mkLink(str(deep), link)  # the same link again: fine
    with pytest.raises(OSError):
        mkLink(str(tmp_path / "a"), link)


def test_guids(tmp_path):
    random = makeGuid()
    assert checkGuid(random) and random == random.upper() and random != makeGuid()
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    md5 = hashlib.md5(b"hello").hexdigest().upper()
    assert makeGuid(str(path)) == f"{md5[:8]}-{md5[8:12]}-{md5[12:16]}-{md5[16:20]}-{md5[20:]}"
    assert makeGuid(str(tmp_path / "missing")) is None
    assert generateGuid("1a2b3c4d", "Adler32") == "00000000-0000-0000-0000-00001A2B3C4D"
    assert checkGuid(generateGuid(None, "MD5"))
    assert checkGuid("abcdefab-abcd-abcd-abcd-abcdefabcdef")
    assert checkGuid("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz")  # DIRAC tolerates any five parts of those lengths
    assert not checkGuid("not-a-guid") and not checkGuid(None)


def test_globbing_md5_and_common_path(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name, data in (("a.txt", b"aa"), ("b.dat", b"bbb"), ("d/c.txt", b"c"), ("d/e/f.txt", b"ffff")):
        (tmp_path / name).write_bytes(data)
    os.symlink(tmp_path / "d", tmp_path / "dlink")
    files = getGlobbedFiles(str(tmp_path / "*"))
    assert sorted(os.path.relpath(f, tmp_path) for f in files) == ["a.txt", "b.dat", "d/c.txt", "d/e/f.txt"]
    assert getGlobbedFiles([str(tmp_path / "*.txt"), str(tmp_path / "b.dat")]) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.dat"),
    ]
    assert getGlobbedTotalSize(str(tmp_path / "*")) == 10
    names = [str(tmp_path / "b.dat"), str(tmp_path / "a.txt"), str(tmp_path / "d")]
    assert getMD5ForFiles(names) == hashlib.md5(b"aabbb").hexdigest()
    assert names[0].endswith("b.dat"), "the caller's list is not sorted in place"
    assert getCommonPath(["/vo/user/a/f1", "/vo/user/a/sub/f2", "/vo/user/a/f3"]) == "/vo/user/a"
    assert getCommonPath(["/vo/x/f", "/other/f"]) == "/"
    assert getCommonPath([]) == ""


def test_secure_open_for_write(tmp_path):
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    with secureOpenForWrite(str(target)) as (handle, name):
        handle.write("new")
    assert (target.read_text(), name, stat.S_IMODE(target.stat().st_mode)) == ("new", str(target), 0o600)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / "planted")
    with pytest.raises(OSError):
        with secureOpenForWrite(str(tmp_path / "planted")) as (handle, _):
            handle.write("owned")
    assert victim.read_text() == "keep"
    with secureOpenForWrite(text=False) as (handle, name):
        handle.write(b"\x00")
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
    os.unlink(name)

"""FileStorage (plugin ``File``, protocol ``file``): every method on a temporary folder, and bad input."""

from __future__ import annotations

import os
import stat

import pytest

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import fileAdler, stringAdler
from DIRAC.Resources.Storage.FileStorage import CHECKSUM_XATTR, TMP_PREFIX, FileStorage

LFN = "/vo/user/a/alice/f.dat"


def make_se(folder, host: str = "localhost", **extra) -> FileStorage:
    parameters = {"Protocol": "file", "Path": str(folder), "Host": host, "PluginName": "File", **extra}
    return FileStorage("FILE-SE", parameters)


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "se"
    folder.mkdir()
    return folder


@pytest.fixture
def se(base) -> FileStorage:
    return make_se(base)


@pytest.fixture
def local(tmp_path):
    """Write a local file: ``local(name, data) -> path``."""
    folder = tmp_path / "local"
    folder.mkdir()

    def write(name: str, data: bytes) -> str:
        path = folder / name
        path.write_bytes(data)
        return str(path)

    return write


def url(se: FileStorage, lfn: str) -> str:
    result = se.constructURLFromLFN(lfn)
    assert result["OK"], result
    return result["Value"]


def ok(result: dict) -> dict:
    assert result["OK"], result
    return result["Value"]


def single(result: dict, key: str):
    """The one Successful value for ``key``; fails the test when it is Failed."""
    value = ok(result)
    assert key in value["Successful"], value["Failed"]
    return value["Successful"][key]


def failure(result: dict, key: str) -> str:
    value = ok(result)
    assert key in value["Failed"], value
    return value["Failed"][key]


def put(se: FileStorage, local, lfn: str, data: bytes) -> str:
    target = url(se, lfn)
    assert single(se.putFile({target: local(os.path.basename(lfn), data)}), target) == len(data)
    return target


def leftovers(folder) -> list[str]:
    return [name for _root, _dirs, names in os.walk(folder) for name in names if name.startswith(TMP_PREFIX)]


# ---------------------------------------------------------------- identity and URLs


def test_urls(se, base):
    assert ok(se.getURLBase()) == f"file://localhost{base}"
    assert url(se, LFN) == f"file://localhost{base}{LFN}"
    assert ok(se.isNativeURL(url(se, LFN))) is True
    assert ok(se.isNativeURL(f"file://otherhost{base}{LFN}")) is False
    assert make_se(base, host="").constructURLFromLFN(LFN)["Value"] == f"file://{base}{LFN}"
    assert se.protocolName == "file" and se.pluginName == "File"
    assert se.inputProtocols == ["file"] and se.outputProtocols == ["file"]
    assert not se.constructURLFromLFN("/vo/../etc/passwd")["OK"]


@pytest.mark.parametrize(
    "bad",
    [
        "file://otherhost{base}/vo/f",  # another host
        "file://localhost/elsewhere/vo/f",  # outside the base folder
        "file://localhost{base}/vo/../../f",  # '..'
        "file://localhost{base}/vo//f",  # empty segment
        "file://localhost{base}/vo/./f",  # '.'
        "s3://localhost{base}/vo/f",  # another protocol
        "file://localhost{base}/vo/f?x=1",  # query
        "",  # empty
    ],
)
def test_bad_urls_are_failed_and_touch_nothing(se, base, local, bad):
    badURL = bad.format(base=base)
    source = local("x", b"x")
    for call in (se.exists, se.getFileMetadata, se.removeFile, se.isDirectory, se.listDirectory, se.createDirectory):
        assert failure(call(badURL), badURL)
    assert failure(se.putFile({badURL: source}), badURL)
    assert failure(se.getFile(badURL, localPath=os.path.dirname(source)), badURL)
    assert list(base.iterdir()) == []


def test_bad_url_reason_is_given(se, base):
    message = failure(se.exists(f"file://localhost{base}/vo/../f"), f"file://localhost{base}/vo/../f")
    assert ".." in message
    message = failure(se.exists("file://localhost/etc/passwd"), "file://localhost/etc/passwd")
    assert "outside" in message


@pytest.mark.parametrize("bad", [5, None, [1, 2], {3: "x"}, 1.5])
def test_wrong_argument_types(se, bad):
    for call in (se.exists, se.getFileMetadata, se.removeFile, se.putFile, se.getFile, se.listDirectory):
        result = call(bad)
        assert not result["OK"], result
        assert "got" in result["Message"] or "must be" in result["Message"], result


def test_symlink_out_of_the_base_is_refused(se, base, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (base / "vo").mkdir()
    (base / "vo" / "link").symlink_to(outside)
    target = url(se, "/vo/link/secret")
    assert "outside" in failure(se.getFileMetadata(target), target)
    assert "outside" in failure(se.removeFile(target), target)
    assert (outside / "secret").exists()


def test_relative_path_is_a_configuration_error(local):
    se = make_se("relative/folder")
    assert se.isok is False
    target = "file://localhost/relative/folder/vo/f"
    assert "absolute" in failure(se.putFile({target: local("f", b"f")}), target)
    assert "absolute" in failure(se.exists(target), target)
    assert not se.getOccupancy()["OK"]


# ---------------------------------------------------------------- put


def test_put_writes_file_checksum_and_mode(se, base, local):
    data = os.urandom(100_000)
    put(se, local, LFN, data)
    stored = base / LFN.lstrip("/")
    assert stored.read_bytes() == data
    assert os.getxattr(stored, CHECKSUM_XATTR).decode() == stringAdler(data)
    assert stat.S_IMODE(stored.stat().st_mode) & 0o644 == 0o644
    assert leftovers(base) == []


def test_put_overwrites_atomically(se, base, local):
    put(se, local, LFN, b"first version")
    put(se, local, LFN, b"second")
    assert (base / LFN.lstrip("/")).read_bytes() == b"second"
    assert ok(se.getFileMetadata(url(se, LFN)))["Successful"][url(se, LFN)]["Checksum"] == stringAdler(b"second")


def test_put_bulk(se, base, local):
    sources = {url(se, f"/vo/bulk/f{i}"): local(f"f{i}", f"data {i}".encode()) for i in range(40)}
    result = ok(se.putFile(sources))
    assert result["Failed"] == {} and len(result["Successful"]) == 40
    assert sorted(os.listdir(base / "vo" / "bulk")) == sorted(f"f{i}" for i in range(40))


def test_put_bad_sources(se, base, local, tmp_path):
    good = local("good", b"good")
    targets = {
        url(se, "/vo/missing"): str(tmp_path / "does-not-exist"),
        url(se, "/vo/folder"): str(tmp_path),
        url(se, "/vo/number"): 42,
        url(se, "/vo/good"): good,
    }
    result = ok(se.putFile(targets))
    assert list(result["Successful"]) == [url(se, "/vo/good")]
    assert "does not exist" in result["Failed"][url(se, "/vo/missing")]
    assert "not a regular file" in result["Failed"][url(se, "/vo/folder")]
    assert "42" in result["Failed"][url(se, "/vo/number")]
    assert sorted(os.listdir(base / "vo")) == ["good"]


def test_put_source_size_mismatch(se, base, local):
    target = url(se, LFN)
    assert "expected 99" in failure(se.putFile({target: local("f", b"abc")}, sourceSize=99), target)
    assert list(base.iterdir()) == []


def test_put_onto_a_directory_or_below_a_file(se, base, local):
    (base / "vo" / "dir").mkdir(parents=True)
    (base / "vo" / "file").write_bytes(b"a file")
    onDir, belowFile = url(se, "/vo/dir"), url(se, "/vo/file/child")
    result = ok(se.putFile({onDir: local("a", b"a"), belowFile: local("b", b"b")}))
    assert "directory" in result["Failed"][onDir]
    assert "not a folder" in result["Failed"][belowFile] or "file of that name" in result["Failed"][belowFile]
    assert (base / "vo" / "file").read_bytes() == b"a file"
    assert leftovers(base) == []


def test_failed_put_leaves_nothing(se, base, local):
    """A put that fails part-way (here: the source changed size) leaves no file and no new folders."""
    source = local("f", b"12345")
    result = se._putFile("/new/deep/folder/f", source, 3, None)
    assert not result["OK"] and DErrno.cmpError(result, DErrno.EFILESIZE), result
    assert list(base.iterdir()) == []


def test_put_creates_the_base_folder(tmp_path, local):
    se = make_se(tmp_path / "not-yet")
    put(se, local, LFN, b"x")
    assert (tmp_path / "not-yet" / LFN.lstrip("/")).read_bytes() == b"x"


def test_put_at_the_top_is_refused(se, local):
    top = ok(se.getURLBase())
    assert failure(se.putFile({top: local("f", b"f")}), top)


# ---------------------------------------------------------------- get


def test_get_file(se, local, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    target = put(se, local, LFN, data)
    out = tmp_path / "out"
    out.mkdir()
    assert single(se.getFile(target, localPath=str(out)), target) == len(data)
    assert (out / "f.dat").read_bytes() == data
    assert os.listdir(out) == ["f.dat"]


def test_get_file_into_current_folder(se, local, tmp_path, monkeypatch):
    target = put(se, local, LFN, b"here")
    monkeypatch.chdir(tmp_path)
    single(se.getFile([target]), target)
    assert (tmp_path / "f.dat").read_bytes() == b"here"


def test_get_same_basename_twice(se, local, tmp_path):
    first, second = put(se, local, "/vo/a/same", b"one"), put(se, local, "/vo/b/same", b"two")
    out = tmp_path / "out"
    out.mkdir()
    result = ok(se.getFile([first, second], localPath=str(out)))
    assert list(result["Successful"]) == [first]
    assert "nothing overwritten" in result["Failed"][second]
    assert (out / "same").read_bytes() == b"one"


def test_get_missing_and_directory(se, base, tmp_path):
    (base / "vo" / "dir").mkdir(parents=True)
    missing, folder = url(se, "/vo/missing"), url(se, "/vo/dir")
    result = ok(se.getFile([missing, folder], localPath=str(tmp_path)))
    assert "does not exist" in result["Failed"][missing]
    assert "directory" in result["Failed"][folder]
    assert not (tmp_path / "missing").exists()


def test_get_into_missing_folder(se, local, tmp_path):
    target = put(se, local, LFN, b"x")
    result = se.getFile(target, localPath=str(tmp_path / "nowhere"))
    assert not result["OK"] and "nowhere" in result["Message"]


def test_get_detects_a_changed_file(se, base, local, tmp_path):
    target = put(se, local, LFN, b"0123456789")
    stored = base / LFN.lstrip("/")
    with open(stored, "r+b") as handle:  # in place: the recorded checksum stays
        handle.write(b"X")
    out = tmp_path / "out"
    out.mkdir()
    message = failure(se.getFile(target, localPath=str(out)), target)
    assert "adler32" in message and stringAdler(b"0123456789") in message
    assert os.listdir(out) == []


# ---------------------------------------------------------------- metadata


def test_file_metadata(se, base, local):
    data = b"metadata" * 1000
    target = put(se, local, LFN, data)
    meta = single(se.getFileMetadata(target), target)
    assert meta["Size"] == len(data)
    assert meta["Checksum"] == stringAdler(data) == fileAdler(str(base / LFN.lstrip("/")))
    assert meta["ChecksumType"] == "ADLER32"
    assert meta["File"] is True and meta["Directory"] is False and meta["Accessible"] is True
    assert meta["Mode"] == stat.S_IMODE((base / LFN.lstrip("/")).stat().st_mode)
    assert abs(meta["ModTime"].timestamp() - (base / LFN.lstrip("/")).stat().st_mtime) < 1
    assert single(se.getFileSize(target), target) == len(data)


def test_metadata_of_a_file_placed_by_hand(se, base):
    (base / "vo").mkdir()
    hand = base / "vo" / "hand"
    hand.write_bytes(b"placed by hand")
    target = url(se, "/vo/hand")
    assert single(se.getFileMetadata(target), target)["Checksum"] == stringAdler(b"placed by hand")
    assert os.getxattr(hand, CHECKSUM_XATTR).decode() == stringAdler(b"placed by hand")


def test_metadata_missing_and_directory(se, base):
    (base / "vo").mkdir()
    missing, folder = url(se, "/vo/missing"), url(se, "/vo")
    result = ok(se.getFileMetadata([missing, folder]))
    assert "does not exist" in result["Failed"][missing]
    assert "directory" in result["Failed"][folder]
    assert "does not exist" in failure(se.getFileSize(missing), missing)


def test_exists_and_is_file(se, local):
    target = put(se, local, LFN, b"x")
    folder, missing = url(se, "/vo/user"), url(se, "/vo/nothing")
    assert ok(se.exists([target, folder, missing]))["Successful"] == {target: True, folder: True, missing: False}
    assert ok(se.exists(url(se, LFN + "/below-a-file")))["Successful"] == {url(se, LFN + "/below-a-file"): False}
    result = ok(se.isFile([target, folder, missing]))
    assert result["Successful"] == {target: True, folder: False}
    assert "does not exist" in result["Failed"][missing]


# ---------------------------------------------------------------- remove


def test_remove_file(se, base, local):
    target = put(se, local, LFN, b"x")
    missing = url(se, "/vo/never-was")
    assert ok(se.removeFile([target, missing]))["Successful"] == {target: True, missing: True}
    assert not (base / LFN.lstrip("/")).exists()
    folder = url(se, "/vo/user")
    assert "directory" in failure(se.removeFile(folder), folder)
    assert (base / "vo" / "user").is_dir()


# ---------------------------------------------------------------- directories


def test_create_and_is_directory(se, base, local):
    folder = url(se, "/vo/new/deep")
    assert single(se.createDirectory(folder), folder) is True
    assert single(se.createDirectory(folder), folder) is True  # again: fine
    assert (base / "vo" / "new" / "deep").is_dir()
    target = put(se, local, LFN, b"x")
    missing = url(se, "/vo/none")
    answer = ok(se.isDirectory([folder, target, missing]))
    assert answer["Successful"] == {folder: True, target: False}
    assert "/vo/none does not exist" in answer["Failed"][missing]  # as DIRAC: Failed with the reason
    below = url(se, LFN + "/sub")
    assert failure(se.createDirectory(below), below)


def test_list_directory(se, base, local):
    put(se, local, "/vo/d/a", b"aa")
    put(se, local, "/vo/d/b", b"bbb")
    put(se, local, "/vo/d/sub/c", b"c")
    (base / "vo" / "d" / f"{TMP_PREFIX}inflight").write_bytes(b"partial")
    folder = url(se, "/vo/d")
    listing = single(se.listDirectory(folder), folder)
    assert sorted(listing["Files"]) == [url(se, "/vo/d/a"), url(se, "/vo/d/b")]
    assert listing["Files"][url(se, "/vo/d/b")]["Size"] == 3
    assert listing["Files"][url(se, "/vo/d/b")]["Checksum"] == stringAdler(b"bbb")
    assert list(listing["SubDirs"]) == [url(se, "/vo/d/sub")]
    missing, aFile = url(se, "/vo/none"), url(se, "/vo/d/a")
    result = ok(se.listDirectory([missing, aFile]))
    assert "does not exist" in result["Failed"][missing]
    assert "not a directory" in result["Failed"][aFile]


def test_directory_size_and_metadata(se, local):
    put(se, local, "/vo/d/a", b"aa")
    put(se, local, "/vo/d/b", b"bbb")
    put(se, local, "/vo/d/sub/c", b"c")
    folder = url(se, "/vo/d")
    assert single(se.getDirectorySize(folder), folder) == {"Files": 2, "Size": 5, "SubDirs": 1}
    meta = single(se.getDirectoryMetadata(folder), folder)
    assert meta["Directory"] is True and meta["File"] is False
    missing = url(se, "/vo/none")
    assert failure(se.getDirectoryMetadata(missing), missing)


def test_remove_directory(se, base, local):
    put(se, local, "/vo/d/a", b"aa")
    put(se, local, "/vo/d/sub/c", b"c")
    folder = url(se, "/vo/d")
    assert single(se.removeDirectory(folder), folder) == {"FilesRemoved": 1, "SizeRemoved": 2}
    assert (base / "vo" / "d" / "sub" / "c").exists()
    assert single(se.removeDirectory(folder, recursive=True), folder) == {"FilesRemoved": 1, "SizeRemoved": 1}
    assert not (base / "vo" / "d").exists()
    assert base.is_dir()
    top = ok(se.getURLBase())
    put(se, local, "/vo/e/x", b"x")
    single(se.removeDirectory(top, recursive=True), top)
    assert base.is_dir() and list(base.iterdir()) == []


def test_put_and_get_directory(se, tmp_path):
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    (source / "one").write_bytes(b"1")
    (source / "sub" / "two").write_bytes(b"22")
    folder = url(se, "/vo/tree")
    assert single(se.putDirectory({folder: str(source)}), folder) == {"Files": 2, "Size": 3}
    out = tmp_path / "out"
    out.mkdir()
    assert single(se.getDirectory(folder, localPath=str(out)), folder) == {"Files": 2, "Size": 3}
    assert (out / "tree" / "sub" / "two").read_bytes() == b"22"
    assert "does not exist" in failure(se.putDirectory({folder: str(tmp_path / "none")}), folder)


# ---------------------------------------------------------------- access and occupancy


def test_transport_url_and_occupancy(se, local):
    target = put(se, local, LFN, b"x")
    assert single(se.getTransportURL(target, ["file"]), target) == target
    result = se.getTransportURL(target, ["https"])
    assert not result["OK"] and DErrno.cmpError(result, DErrno.EPROTONOSUPPORT)
    occupancy = ok(se.getOccupancy())
    assert occupancy["Total"] >= occupancy["Free"] > 0


def test_get_parameters(se, base):
    parameters = se.getParameters()
    assert parameters["StorageName"] == "FILE-SE" and parameters["Path"] == str(base)

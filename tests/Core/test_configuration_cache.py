"""The central configuration kept on disk: where, who may read it, what is refused."""

from __future__ import annotations

import json

from diraccfg import CFG

from DIRAC.ConfigurationSystem.Client.ConfigurationCache import cachePath, loadCache, saveCache

SERVERS = "https://cs1:9135/Configuration/Server, https://cs2:9135/Configuration/Server"


def test_the_path_is_per_server_list_and_may_be_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = cachePath(CFG(), SERVERS)
    assert first.startswith(f"{tmp_path}/dirac/configuration-")
    assert cachePath(CFG(), "https://cs2:9135/Configuration/Server,https://cs1:9135/Configuration/Server") == first
    assert cachePath(CFG(), "https://other:9135/Configuration/Server") != first
    configured = CFG().loadFromBuffer(f"DIRAC\n{{\n Configuration\n {{\n  CacheFile = {tmp_path}/x.json\n }}\n}}\n")
    assert cachePath(configured, SERVERS) == f"{tmp_path}/x.json"


def test_saved_then_loaded(tmp_path):
    path = str(tmp_path / "deep" / "c.json")
    assert saveCache(path, SERVERS, "v1", "A\n{\n  B = 1\n}\n")["OK"]
    cfg, version, _saved = loadCache(path, SERVERS)["Value"]
    assert version == "v1" and cfg.getOption("A/B") == "1"
    assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o700
    assert not list((tmp_path / "deep").glob(".configuration-*")), "no temporary file left"


def test_refusals(tmp_path):
    path = tmp_path / "c.json"
    assert not loadCache(str(path), SERVERS)["OK"]
    assert saveCache(str(path), SERVERS, "v1", "A\n{\n  B = 1\n}\n")["OK"]
    assert "other servers" in loadCache(str(path), "https://elsewhere/Configuration/Server")["Message"]
    path.write_text("{not json")
    path.chmod(0o600)
    assert "unreadable" in loadCache(str(path), SERVERS)["Message"]
    path.write_text(json.dumps({"servers": SERVERS, "version": "v", "saved": 0, "cfg": "A\n{\n"}))
    result = loadCache(str(path), SERVERS)
    assert not result["OK"] or result["Value"][0] is not None
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert not loadCache(str(link), SERVERS)["OK"], "a symbolic link is not followed"

"""Shared fixtures: real S3 servers, a test CA, RPC services (see each plugin module)."""

import os

import pytest

pytest_plugins = ["s3_fixtures", "security_fixtures", "rpc_fixtures", "db_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    """Caches (the central configuration kept on disk) go to a test folder, never to the user's ~/.cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield os.environ["XDG_CACHE_HOME"]
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture
def relay_of(site):
    """For a module whose ``site`` fixture holds ``{"relays": {se: FaultRelay}}``: ``relay_of(se)`` is
    that SE's relay, its rules and records cleared before and after the test."""
    for relay in site["relays"].values():
        relay.clear()
        relay.forget()
    yield site["relays"].__getitem__
    for relay in site["relays"].values():
        relay.clear()

"""Tests against a real DIRAC 9 installation: marked ``dirac9``, skipped unless selected with ``-m dirac9``.

DIRAC 9 lives in its own virtualenv (``tools/install-dirac9.sh``), found through ``DIRAC9_PYTHON``
or the script's default place; its code runs only in subprocesses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "Core" / "Tornado", TESTS / "DataManagementSystem", TESTS / "security"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
from rpc_fixtures import rpc_launcher  # noqa: E402, F401

DEFAULT_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dirac-9.1.22"


def pytest_collection_modifyitems(config, items):
    if "dirac9" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="real DIRAC 9 tests run with -m dirac9 (install: tools/install-dirac9.sh)")
    for item in items:
        if "dirac9" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def dirac9_python() -> str:
    """The Python of the DIRAC 9 virtualenv; a clear failure when it is not installed."""
    python = os.environ.get("DIRAC9_PYTHON") or str(DEFAULT_VENV / "bin" / "python")
    if not Path(python).is_file():
        pytest.fail(f"no DIRAC 9 at {python}: run tools/install-dirac9.sh or set DIRAC9_PYTHON")
    return python

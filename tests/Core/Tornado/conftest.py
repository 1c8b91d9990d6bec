"""Fixtures of the RPC tests: the test CA (security_fixtures) and service launchers (rpc_fixtures)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from rpc_fixtures import rpc_launcher, rpc_launcher_module  # noqa: E402, F401
from security_fixtures import security_cfg, test_ca, unknown_ca, user_proxy  # noqa: E402, F401

"""Fixtures of the RPC tests: the test CA (security_fixtures) and service launchers (rpc_fixtures).

``tests/conftest.py`` normally loads security_fixtures as a plugin; when it did not (tests run
from another root), the fixtures are imported here. rpc_fixtures' fixtures are cheap (function
and module scope) and always imported.
"""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from rpc_fixtures import rpc_launcher, rpc_launcher_module  # noqa: E402, F401

if "security_fixtures" not in sys.modules:
    from security_fixtures import security_cfg, test_ca, unknown_ca, user_proxy  # noqa: F401

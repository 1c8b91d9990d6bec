"""Makes tests/security_fixtures.py available here when tests/conftest.py does not load it as a plugin."""

import sys
from pathlib import Path

if "security_fixtures" not in sys.modules:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from security_fixtures import security_cfg, test_ca, unknown_ca, user_proxy  # noqa: F401

#!/usr/bin/env bash
# Install real DIRAC 9.1.22 (client side) in its own virtualenv for the tests marked dirac9.
# DIRAC's requirements come from PyPI except gfal2-python (it needs the gfal2 C library);
# DIRAC itself is then installed with --no-deps. Takes a few minutes.
# Usage: tools/install-dirac9.sh [VENV]   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dirac-9.1.22)
set -euo pipefail
VERSION=9.1.22
VENV=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/dirac-$VERSION}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$VENV"
"$VENV/bin/pip" download -q --no-deps -d "$WORK" "DIRAC==$VERSION"
WHEEL=$(ls "$WORK"/dirac-"$VERSION"-*.whl)
python3 - "$WHEEL" > "$WORK/requirements.txt" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    for line in wheel.read(name).decode().splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line and "gfal2" not in line:
            print(line.split(":", 1)[1].strip())
PY
"$VENV/bin/pip" install -q --prefer-binary -r "$WORK/requirements.txt"
"$VENV/bin/pip" install -q --no-deps "$WHEEL"
echo "DIRAC $VERSION installed in $VENV (run: DIRAC9_PYTHON=$VENV/bin/python pytest -m dirac9 tests/dirac9)"

#!/usr/bin/env bash
# Stop what tools/demo.sh started: the site (runsvdir and every service under it) and the S3 server.
# Usage: tools/demo-stop.sh [--quiet] [DEMO_FOLDER]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUIET=0
if [ "${1:-}" = "--quiet" ]; then QUIET=1; shift; fi
DEMO=${1:-${DEMO_DIR:-$ROOT/demo}}
export PATH="${VENV_BIN:-$ROOT/.venv/bin}:$PATH"
say() { [ "$QUIET" = 1 ] || echo "$@"; }

if [ -f "$DEMO/instance/runsvdir.pid" ]; then
  if command -v dirac-setup-site >/dev/null; then
    dirac-setup-site --stop "$DEMO/instance" >/dev/null 2>&1 && say "site in $DEMO/instance stopped"
  else
    # Without the virtualenv: a HUP makes runsvdir stop every runsv, and each runsv its service.
    pid=$(cat "$DEMO/instance/runsvdir.pid")
    kill -HUP "$pid" 2>/dev/null && say "site in $DEMO/instance stopped (runsvdir pid $pid)"
  fi
fi
if [ -f "$DEMO/s3server.pid" ]; then
  pid=$(cat "$DEMO/s3server.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    say "S3 server (pid $pid) stopped"
  fi
  rm -f "$DEMO/s3server.pid"
fi
say "demo stopped (its files stay in $DEMO)"
exit 0

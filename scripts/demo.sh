#!/usr/bin/env bash
# From a fresh clone: install into .venv, create the embedded SQLite database, load the demo
# county once, and serve it at http://127.0.0.1:8000 (Ctrl-C to stop).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/jieyou demo-server --host 127.0.0.1 --port "${PORT:-8000}"

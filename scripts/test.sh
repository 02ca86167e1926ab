#!/usr/bin/env bash
# Install the project with its test extras into .venv and run the whole suite against a real
# PostgreSQL (the tests create, migrate and drop their own database).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
exec .venv/bin/python -m pytest "$@"

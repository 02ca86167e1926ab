#!/usr/bin/env bash
# Start PostgreSQL and Redis if they are down, install the project with its test extras into
# .venv, and run the whole suite against a real PostgreSQL (the tests create, migrate and drop
# their own database). This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Start PostgreSQL and Redis if they are down (scripts/services.sh, which also installs Chromium and
# chromedriver for the phone page's browser test when missing), install the project with its test
# extras (selenium among them) into .venv, and run the whole suite against a real PostgreSQL (the
# tests create, migrate and drop their own database). This is the README's test command and what
# .ci/run calls; under CI=true a missing browser fails the browser test instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
exec .venv/bin/python -m pytest "$@"

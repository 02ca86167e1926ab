#!/usr/bin/env bash
# Start what the tests need when it is not already running: PostgreSQL (trust auth on
# 127.0.0.1:5432) and Redis (127.0.0.1:6379). Installs them with apt-get when missing, and
# Chromium with its driver for the phone page's browser test (tests/pages/test_me_browser.py).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_up() { psql -h 127.0.0.1 -U postgres -d postgres -Atqc "select 1" >/dev/null 2>&1; }

if ! pg_up; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        echo "installing PostgreSQL"
        apt_install postgresql postgresql-client
    fi
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q "jieyou-tests" "$hba"; then
        # The tests create and drop their own databases as the postgres user over loopback.
        as_root sed -i '1i host all all 127.0.0.1/32 trust # jieyou-tests\nhost all all ::1/128 trust # jieyou-tests' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || { echo "PostgreSQL did not come up" >&2; exit 1; }
fi
echo "PostgreSQL: up"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    command -v redis-server >/dev/null || { echo "installing Redis"; apt_install redis-server; }
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
echo "Redis: up"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "installing Chromium and chromedriver (browser test)"
    # Under CI the browser test must run, so a failed install fails here; elsewhere it is skipped.
    apt_install chromium chromium-driver || [ "${CI:-}" != true ] || exit 1
fi
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "Chromium: installed"
else
    echo "Chromium: missing (the browser test will be skipped)"
fi

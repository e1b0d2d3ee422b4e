#!/usr/bin/env bash
# Install what the test suite needs and run all of it: lint, types, and pytest
# on SQLite and PostgreSQL. Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${UNSUBSVC_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

# Browser tests drive Debian's Chromium through Playwright (no browser download).
CHROMIUM=${UNSUBSVC_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing chromium (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# PostgreSQL: use UNSUBSVC_TEST_DATABASE_URL if given, else the local server
# (started if it is installed but not running).
if [ -z "${UNSUBSVC_TEST_DATABASE_URL:-}" ]; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
        for version in $(ls /etc/postgresql 2>/dev/null); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
        export UNSUBSVC_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test
    elif [ -n "${CI:-}" ]; then
        echo "PostgreSQL is not reachable on 127.0.0.1:5432; CI runs every test on it." >&2
        exit 1
    else
        echo "warning: no PostgreSQL on 127.0.0.1:5432: PostgreSQL tests will be skipped." >&2
    fi
fi

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest (SQLite and ${UNSUBSVC_TEST_DATABASE_URL:-no PostgreSQL})"
exec "$VENV/bin/python" -m pytest "$@"

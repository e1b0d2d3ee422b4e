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
# setuptools too: the one a new virtualenv gets from ensurepip (65.5 on Python 3.11) has
# known vulnerabilities (CVE-2022-40897, CVE-2024-6345, CVE-2025-47273).
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

# Browser tests drive Debian's Chromium through Playwright (no browser download).
CHROMIUM=${UNSUBSVC_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing chromium (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# axe-core for the accessibility browser tests (tests/axe_check.py), pinned by its lock
# file; installed again only when the lock file is newer than what npm installed.
if [ ! -f tests/axe/node_modules/.package-lock.json ] \
    || [ tests/axe/package-lock.json -nt tests/axe/node_modules/.package-lock.json ]; then
    echo "== npm ci (axe-core)"
    npm ci --prefix tests/axe --no-audit --no-fund --silent
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

# Known vulnerabilities in what is installed (the project itself, editable, is skipped).
# pip-audit asks PyPI's JSON API for each installed version's advisories (the OSV data
# PyPI publishes). Where that per-version document cannot be had (a registry mirror that
# serves only /pypi/NAME/json), the check falls back to the advisories PyPI lists for the
# newest release, which are the installed version's when it is the newest; a package it
# still cannot audit is named, and fails the run when UNSUBSVC_AUDIT_STRICT=1.
echo "== pip-audit"
AUDIT_REPORT=$(mktemp)
trap 'rm -f "$AUDIT_REPORT" "$AUDIT_REPORT.log"' EXIT
# Exit 1 means "vulnerable" or "failed": the report (or its absence) says which, below.
"$VENV/bin/pip-audit" --skip-editable --progress-spinner off --format json \
    --output "$AUDIT_REPORT" >/dev/null 2>"$AUDIT_REPORT.log" || true
if [ ! -s "$AUDIT_REPORT" ]; then
    cat "$AUDIT_REPORT.log" >&2
    echo "pip-audit wrote no report" >&2
    exit 1
fi
"$VENV/bin/python" - "$AUDIT_REPORT" <<'PY'
import json, os, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

report = json.load(open(sys.argv[1]))["dependencies"]
found = [(d["name"], d["version"], v) for d in report for v in d.get("vulns", [])]
editable = [d for d in report if "editable" in d.get("skip_reason", "")]
skipped = [d for d in report if "skip_reason" in d and d not in editable]
for d in skipped:  # a skipped entry may leave out the version it could not audit
    d.setdefault("version", metadata.version(d["name"]))


def newest(dep):
    """Return (dep, advisories of the newest release, its version), or (dep, None, reason)."""
    try:
        url = f"https://pypi.org/pypi/{dep['name']}/json"
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (fixed https URL)
            doc = json.load(answer)
    except Exception as exc:
        return dep, None, f"PyPI unreachable ({exc})"
    return dep, doc.get("vulnerabilities", []), doc["info"]["version"]


unaudited = []
with ThreadPoolExecutor(8) as pool:
    for dep, vulns, latest in pool.map(newest, skipped):
        if vulns is None or latest != dep["version"]:
            why = latest if vulns is None else f"not the newest release ({latest})"
            unaudited.append(f"{dep['name']} {dep['version']}: {why}")
            continue
        for v in vulns:
            if not v.get("withdrawn"):
                found.append((dep["name"], dep["version"], {"id": v["id"],
                              "fix_versions": v.get("fixed_in", [])}))
by_version = len(report) - len(editable) - len(skipped)
as_newest = len(skipped) - len(unaudited)
print(f"pip-audit: {by_version + as_newest} of {len(report) - len(editable)} installed packages"
      f" audited ({by_version} by version, {as_newest} as the newest release),"
      f" {len(found)} known vulnerabilities")
for name, version, v in found:
    fixed = ", ".join(v.get("fix_versions") or []) or "no fixed version"
    print(f"VULNERABLE {name} {version}: {v['id']} (fixed in {fixed})", file=sys.stderr)
for line in unaudited:
    print(f"not audited: {line}", file=sys.stderr)
strict = os.environ.get("UNSUBSVC_AUDIT_STRICT") == "1"
sys.exit(1 if found or (strict and unaudited) else 0)
PY
rm -f "$AUDIT_REPORT" "$AUDIT_REPORT.log"  # the trap does not outlive the exec below

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest (SQLite and ${UNSUBSVC_TEST_DATABASE_URL:-no PostgreSQL})"
exec "$VENV/bin/python" -m pytest "$@"

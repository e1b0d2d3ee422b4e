"""The core imports no web, database or CLI framework."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import unsubsvc.core

ROOT = Path(__file__).resolve().parents[2]
# Every module in the package, found rather than listed, so a new one is checked too.
CORE_MODULES = sorted(
    f"unsubsvc.core.{info.name}" for info in pkgutil.iter_modules(unsubsvc.core.__path__)
)
FORBIDDEN = ["flask", "flask_sqlalchemy", "sqlalchemy", "wtforms", "click"]

PROBE = """
import importlib, json, sys
for name in sys.argv[1].split(","):
    importlib.import_module(name)
watched = set(sys.argv[2].split(","))
print(json.dumps(sorted(m for m in sys.modules if m in watched)))
"""


def loaded_after_import(modules: list[str], watch: list[str]) -> list[str]:
    """Import ``modules`` in a fresh interpreter and return which watched modules got loaded."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(modules), ",".join(watch)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_core_imports_no_framework() -> None:
    """Importing every core module loads none of Flask, SQLAlchemy, WTForms or Click."""
    assert loaded_after_import(CORE_MODULES, FORBIDDEN) == []


@pytest.mark.parametrize("module", CORE_MODULES, ids=[m.rsplit(".", 1)[1] for m in CORE_MODULES])
def test_each_core_module_alone(module: str) -> None:
    """Each core module on its own stays free of the frameworks."""
    assert loaded_after_import([module], [*FORBIDDEN, module]) == [module]


def test_probe_sees_a_framework_when_one_is_imported() -> None:
    """The check itself works: it reports a forbidden module that does get imported."""
    loaded = loaded_after_import([*CORE_MODULES, "wtforms"], FORBIDDEN)
    assert "wtforms" in loaded

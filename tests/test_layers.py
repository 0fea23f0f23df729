"""Layering (DESIGN.md section 8) beyond what import-linter sees statically.

import-linter checks the import graph; these tests check the two things it
cannot: that every service module in tui/ is named in the layers contract, and
that importing the engine or the services at run time pulls in no Textual
(a deferred import would hide from the static graph).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = {"tui.app", "tui.cli", "tui.__main__", "tui.__init__"}


def _contract_services() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    services_layer = layers[2]
    # "|" separates independent siblings, ":" siblings that may import each other.
    return {part.strip().strip("()") for part in re.split(r"[|:]", services_layer)}


def _tui_modules() -> set[str]:
    return {f"tui.{path.stem}" for path in (ROOT / "tui").glob("*.py")} - ENTRY_POINTS


def test_every_tui_service_is_in_the_layers_contract() -> None:
    """A new service module must be added to the contract, or it escapes it."""
    missing = _tui_modules() - _contract_services()
    assert not missing, f"add these to the services layer in pyproject.toml: {sorted(missing)}"


@pytest.mark.parametrize(
    "module",
    sorted(
        {"transports", *(f"transports.{p.stem}" for p in (ROOT / "transports").glob("*.py"))}
        - {"transports.__init__"}
    )
    + sorted(_tui_modules()),
)
def test_module_imports_no_textual_at_run_time(module: str) -> None:
    """Importing the engine or a service must not load Textual (fast CLI, clean layers)."""
    code = (
        f"import sys, {module}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'screens'}); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"

"""Start-up hygiene (issue 8, benchmark 1): the settings screen paints without importing
what only the other screens, the OAuth2 sign-in, a send or the demo need.

A fresh interpreter runs the app headless until its first paint (``auto_pilot`` starts
when the app is ready, before the screen is composed: the pause waits for the screen,
mounted and painted), then lists which of the heavy modules were imported; then the same app opens
the Documents screen, which must bring them in (so the check can fail).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "fpdf",
    "fontTools",
    "httpx",
    "aiosmtpd",
    "screens.documents",
    "screens.email",
    "screens.oauth",
    "tui.oauth",
    "tui.sandbox",
    "tui.pdf",
    "tui.batch",
    "transports.message",
)

DRIVER = """
import json, sys
from pathlib import Path
from tui.app import make_app
HEAVY = json.loads(sys.argv[2])
seen = {}
async def leave(pilot):
    await pilot.pause()
    seen["paint"] = sorted(m for m in HEAVY if m in sys.modules)
    await pilot.press("ctrl+o")
    await pilot.pause()
    seen["documents"] = sorted(m for m in HEAVY if m in sys.modules)
    seen["screen"] = type(pilot.app.screen).__name__
    pilot.app.exit()
app = make_app(config_path=Path(sys.argv[1]), documents_dir=Path(sys.argv[1]).parent)
app.run(headless=True, size=(80, 24), auto_pilot=leave)
print(json.dumps(seen))
"""


def test_first_paint_imports_none_of_the_heavy_modules(tmp_path: Path) -> None:
    env = {
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "XDG_DATA_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "settings.toml"), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_base_env(), **env},
        check=True,
        timeout=60,
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["paint"] == []
    assert seen["screen"] == "DocumentsScreen"
    assert {"screens.documents", "screens.email", "fpdf", "httpx"} <= set(seen["documents"])


def _base_env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if key != "SMTPDESK_DEBUG"}

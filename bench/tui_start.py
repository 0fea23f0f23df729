"""Benchmark 1: TUI cold start to the first paint of the settings screen, fresh
processes, against a bare Textual app with the same kinds of widgets; both exit
from ``auto_pilot`` (which runs once the first screen is composed and painted).
Median of 10, interleaved. Target: ≤ 1.2×.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import PYTHON, Row, child_env, median, timed_run

SMTPDESK = """
import sys
from pathlib import Path
from tui.app import make_app
async def leave(pilot):
    pilot.app.exit()
app = make_app(config_path=Path(sys.argv[1]))
app.run(headless=True, size=(80, 24), auto_pilot=leave)
"""

BARE = """
from textual.app import App
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Log, Select
class Bare(App[None]):
    def compose(self):
        yield Header()
        with Horizontal():
            with VerticalScroll():
                yield Select([(p, p) for p in "Gmail Yahoo Office Custom".split()])
                yield Select([("SMTP", 1), ("HTTP", 2)], allow_blank=False, value=1)
                for name in "host port username from password copy reply ca".split():
                    yield Label(name)
                    yield Input(placeholder=name)
                for name in "copy reply verify".split():
                    yield Checkbox(name)
                yield Button("Test email settings")
                yield Button("Save")
            yield Log()
        yield Footer()
async def leave(pilot):
    pilot.app.exit()
Bare().run(headless=True, size=(80, 24), auto_pilot=leave)
"""


def run(source: Path, quick: bool) -> list[Row]:
    rounds = 4 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "settings.toml"
        env = child_env(
            source, XDG_DATA_HOME=tmp, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"
        )
        ours: list[float] = []
        ref: list[float] = []
        for _ in range(rounds):
            ref.append(timed_run([PYTHON, "-c", BARE], env))
            ours.append(timed_run([PYTHON, "-c", SMTPDESK, str(config)], env))
    return [
        Row(
            "1 TUI start",
            "first paint of the settings screen",
            median(ours) * 1000,
            median(ref) * 1000,
            "ms",
            "≤ 1.2×",
            "fresh processes, headless 80x24",
        )
    ]

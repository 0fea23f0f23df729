"""Benchmark 1: TUI cold start to the first paint of the settings screen, fresh
processes, against a bare Textual app with the same widget tree (the same number of
Selects, Inputs, Checkboxes, Buttons, labels, error lines and notices, the same fields
hidden, a Log, Header and Footer, on a default screen of its own as smtpdesk's; no app
logic, no pydantic). Median of 10, interleaved. Target: ≤ 1.2×.

Both processes run the same hook (``PROBE``), which notes the time of the first frame
the compositor renders of the default screen once that screen is mounted (its whole
widget tree composed, ``on_mount`` run: smtpdesk's form holds the loaded settings): the
first paint; then the time the screen is idle after it (``call_after_refresh``: nothing
left to lay out or repaint, work deferred past the first paint included), and leaves.
Times run from just before the process is launched (``time.perf_counter`` is
CLOCK_MONOTONIC on Linux, one clock for parent and child). Headless, 80x24: the frame
is rendered, not written. A third row is the whole process, launch to exit after idle
(interpreter start-up and teardown included).

Until 2026-11-27 both left from ``auto_pilot``, which Textual starts when the *app* is
ready, before the default screen has composed its children (5 of ~145 widgets existed,
no frame had been rendered; Header's title task then failed with ``NoMatches``), and the
time was the process's, teardown included (~150 ms of the bare app's): that measured
imports, app set-up and exit, not the first paint.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from bench import PYTHON, Row, child_env, median

PROBE = """
import sys, time
from textual.screen import Screen
_compositor_refresh = Screen._compositor_refresh
_stamps = []
def _note_first_paint(self):
    _compositor_refresh(self)
    app = self.app
    if not _stamps and self is app.screen and self.is_mounted:
        _stamps.append(time.perf_counter())
        def idle():
            _stamps.append(time.perf_counter())
            app.exit()
        self.call_after_refresh(idle)
Screen._compositor_refresh = _note_first_paint
"""
"""Note the first frame of the mounted default screen and the screen's next idle, then
leave; the same code in both processes (Textual 8's ``Screen._compositor_refresh``
renders every frame, headless or not). The script prints the two times last."""

SMTPDESK = (
    PROBE
    + """
from pathlib import Path
from tui.app import make_app
app = make_app(config_path=Path(sys.argv[1]))
app.run(headless=True, size=(80, 24))
print(*_stamps)
"""
)

BARE_APP = """
from textual.app import App
from textual.screen import Screen
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Log, Select, Static
def field(name, widget, hidden=False):
    box = Vertical(Label(name), widget, Static(""), classes="field")
    box.display = not hidden
    return box
class Form(Screen):
    DEFAULT_CSS = ".field { height: auto; margin-bottom: 1; } Horizontal { height: auto; }"
    def compose(self):
        yield Header()
        with Horizontal(id="body"):
            with VerticalScroll():
                yield Static("")
                for name, count in (("preset", 11), ("protocol", 2)):
                    yield field(name, Select([(str(i), i) for i in range(count)],
                                             allow_blank=False, value=0, compact=True))
                yield field("url", Input(compact=True), hidden=True)
                yield Static("")
                yield field("host", Input(placeholder="host", id="smtp-host", compact=True))
                with Horizontal():
                    yield field("port", Input("587", type="integer", compact=True))
                    yield field("security", Select([(str(i), i) for i in range(3)],
                                                   allow_blank=False, value=0, compact=True))
                yield Static("")
                for name in "username from".split():
                    yield field(name, Input(placeholder=name, compact=True))
                yield field("auth", Select([(str(i), i) for i in range(2)],
                                           allow_blank=False, value=0, compact=True))
                yield Static("")
                yield field("provider", Select([(str(i), i) for i in range(2)],
                                               allow_blank=False, value=0, compact=True),
                            hidden=True)
                for name in "tenant client".split():
                    yield field(name, Input(compact=True), hidden=True)
                with Horizontal() as row:
                    row.display = False
                    yield Button("Sign in", compact=True)
                    yield Static("")
                with Vertical(classes="field"):
                    yield Label("Password")
                    with Horizontal():
                        yield Input(password=True, compact=True)
                        yield Button("Show", compact=True)
                yield field("name", Input(compact=True))
                yield Checkbox("copy", compact=True)
                yield field("copy", Input(compact=True), hidden=True)
                yield Checkbox("reply", compact=True)
                yield field("reply", Input(compact=True), hidden=True)
                yield Checkbox("verify", compact=True)
                yield Static("")
                yield Static("")
                yield Checkbox("advanced", compact=True)
                for name in "ca timeout device token scope".split():
                    yield field(name, Input(compact=True), hidden=True)
                yield Static("")
                with Horizontal():
                    yield Button("Test email settings")
                    yield Button("Save")
                yield Static("")
            with VerticalScroll():
                yield Static("Guidance")
                yield Static("")
                yield Log()
                with VerticalScroll() as hints:
                    hints.display = False
                    yield Static("")
        yield Footer()
class Bare(App[None]):
    def get_default_screen(self):
        return Form()
"""
"""The reference app (``Bare``), also typed into by benchmark 7."""

BARE = PROBE + BARE_APP + "Bare().run(headless=True, size=(80, 24))\nprint(*_stamps)\n"


SAVED = """\
protocol = "smtp"
preset = "gmail"
from_name = "Accounts, Example Ltd"
[smtp]
host = "smtp.gmail.com"
port = 587
security = "starttls"
username = "accounts@example.com"
"""
"""The settings file smtpdesk starts with (benchmark 1)."""


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds from launch to the first paint, to idle, and to the process's exit."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    end = time.perf_counter()
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {done.returncode}: {done.stderr[-2000:]}")
    paint, idle = (float(stamp) for stamp in done.stdout.strip().splitlines()[-1].split())
    return paint - start, idle - start, end - start


def run(source: Path, quick: bool) -> list[Row]:
    rounds = 4 if quick else 10
    ours: list[tuple[float, float, float]] = []
    ref: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # A saved configuration, as a user who has set up has (its values are in the
        # first frame, the keyring is asked in a worker): a fresh one is faster.
        config = Path(tmp) / "settings.toml"
        config.write_text(SAVED)
        config.chmod(0o600)
        env = child_env(
            source, XDG_DATA_HOME=tmp, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"
        )
        for _ in range(rounds):
            ref.append(_timed([PYTHON, "-c", BARE], env))
            ours.append(_timed([PYTHON, "-c", SMTPDESK, str(config)], env))
    cases = (
        ("first paint of the settings screen", "≤ 1.2×"),
        ("settings screen idle after its first paint", "≤ 1.2×"),
        ("whole process: launch to exit after idle", "report"),
    )
    return [
        Row(
            "1 TUI start",
            case,
            median([times[index] for times in ours]) * 1000,
            median([times[index] for times in ref]) * 1000,
            "ms",
            target,
            "fresh processes, headless 80x24, from launch",
        )
        for index, (case, target) in enumerate(cases)
    ]

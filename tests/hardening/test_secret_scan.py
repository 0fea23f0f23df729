"""The all-paths secret scan: a recognisable password through every CLI path and
the TUI, then every output searched for it — plain, base64 and URL-encoded.

CLI paths run as real subprocesses (the password from SMTPDESK_PASSWORD, or as
a relay key); ``password set/clear`` run in-process against a dict keyring;
the TUI runs under Pilot. Then stdout, stderr, log records, every file under
the test's config, data and temp dirs, the sandbox's captured messages and the
SVG snapshots are scanned. Zero hits.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import socket
import sys
import urllib.parse
from pathlib import Path

import pytest
from textual.widgets import Input

from screens.dialogs import ChoiceScreen
from tests.secrets.keyrings import MemoryKeyring
from transports.settings import Settings
from tui.app import make_app
from tui.cli import main
from tui.documents import ensure_documents_folder
from tui.sandbox import Sandbox
from tui.store import SettingsStore

ROOT = Path(__file__).resolve().parents[2]
USER = "ops@acme.test"
SECRET = "Zq7/sEcReT+pw=9x%&"  # '/', '+', '=', '%', '&': base64 and URL encodings differ


def forms(secret: str) -> list[bytes]:
    """Every shape the secret could leak in."""
    shapes = {
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{secret}".encode()).decode(),  # AUTH PLAIN
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        secret.encode().hex(),
    }
    return [s.encode() for s in shapes]


def hits(data: bytes, where: str) -> list[str]:
    return [f"{where}: {form!r}" for form in forms(SECRET) if form in data]


def scan_tree(root: Path) -> list[str]:
    found: list[str] = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            found += hits(path.read_bytes(), str(path))
    return found


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_no_path_leaks_the_password(
    tmp_path: Path,
    isolated_environment: Path,
    memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    found: list[str] = []
    async with (
        Sandbox(tmp_path / "sandbox", accounts={USER: SECRET}, http_key=SECRET) as good,
        Sandbox(tmp_path / "wrong", accounts={USER: "another-password"}) as wrong,
    ):
        configs = tmp_path / "configs"
        configs.mkdir()

        def config(name: str, settings: Settings) -> str:
            path = configs / name / "settings.toml"
            SettingsStore(path).save(settings)
            return str(path)

        starttls = config("starttls", good.settings("starttls", timeout=5))
        implicit = config("tls", good.settings("tls", timeout=5))
        http = config("http", good.settings("http", timeout=5))
        rejected = config("wrong", wrong.settings("starttls", timeout=5))
        refused_settings = good.settings("starttls", timeout=2).model_dump(mode="json")
        refused_settings["smtp"]["port"] = closed_port()
        refused = config("refused", Settings.model_validate(refused_settings))
        documents = tmp_path / "documents"
        ensure_documents_folder(documents)
        env = dict(os.environ, PYTHONPATH=str(ROOT), SMTPDESK_PASSWORD=SECRET, TMPDIR=str(temp))

        runs = [
            ["--config", starttls, "test"],
            ["--config", starttls, "test", "--json"],
            ["--config", starttls, "test", "--probe"],
            ["--config", implicit, "test", "--json"],
            ["--config", http, "test"],
            ["--config", rejected, "test"],  # 535: wrong password
            ["--config", rejected, "test", "--json"],
            ["--config", refused, "test", "--json"],  # connection refused
            ["--config", starttls, "send", "--to", "a@x.test", "--subject", "s", "--body", "b"],
            ["--config", rejected, "send", "--to", "a@x.test", "--json"],
            ["--config", http, "send", "--to", "a@x.test", "--json"],
            ["--config", starttls, "--documents", str(documents), "documents", "list"],
            ["--config", starttls, "--documents", str(documents), "send"]
            + ["--document", "INV-2026-0141", "--document", "Q-2026-0031", "--json"],
            ["--config", starttls, "show"],
            ["--config", starttls, "show", "--json"],
            ["--config", starttls, "log"],
            ["--config", starttls, "log", "--json"],
        ]
        for argv in runs:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tui",
                *argv,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode in (0, 1), (argv, out[-500:], err[-500:])
            assert b"Traceback" not in err, err.decode()[-2000:]
            found += hits(out, f"stdout of {argv[2:]}") + hits(err, f"stderr of {argv[2:]}")
        assert len(good.messages) >= 5  # the paths really sent

        # password set / clear, in-process against the dict keyring.
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"{SECRET}\n".encode())))
        assert main(["--config", starttls, "password", "set", "--stdin"]) == 0
        assert list(memory_keyring.entries.values()) == [SECRET]
        monkeypatch.delenv("SMTPDESK_PASSWORD", raising=False)
        assert main(["--config", starttls, "show"]) == 0
        assert main(["--config", starttls, "password", "clear"]) == 0
        assert memory_keyring.entries == {}
        said = capsys.readouterr()
        found += hits(said.out.encode(), "stdout of password set/show/clear")
        found += hits(said.err.encode(), "stderr of password set/show/clear")

        # The TUI: test send that succeeds, one that fails, then save.
        for path in (starttls, rejected):
            app = make_app(config_path=Path(path), cursor_blink=False)
            async with app.run_test(size=(80, 24)) as pilot:
                field = app.screen.query_one("#password", Input)
                field.focus()
                await pilot.press(*SECRET)
                await pilot.press("ctrl+t")
                await pilot.pause()
                await pilot.press("enter")
                await pilot.pause()
                await app.workers.wait_for_complete()
                await pilot.pause()
                found += hits(app.export_screenshot().encode(), f"TUI screen ({path})")
                await pilot.press("ctrl+s")
                await pilot.pause()
                if isinstance(app.screen, ChoiceScreen):  # "Save untested settings?"
                    await pilot.click("#choice-save")
                await app.workers.wait_for_complete()
                await pilot.pause()
                found += hits(app.export_screenshot().encode(), f"TUI after save ({path})")
        assert memory_keyring.entries  # the TUI save stored it in the keyring, nowhere else

        captured = [m.data for m in good.messages + wrong.messages]
    for index, data in enumerate(captured):
        found += hits(data, f"captured message {index}")
    for record in caplog.records:
        found += hits(record.getMessage().encode(), f"log record {record.name}")
        if record.exc_text:
            found += hits(record.exc_text.encode(), f"log traceback {record.name}")
    found += scan_tree(tmp_path)  # config, data (send log, verified), temp, sandbox folders
    found += scan_tree(isolated_environment)
    found += scan_tree(ROOT / "tests" / "snapshots" / "__snapshots__")
    assert found == []

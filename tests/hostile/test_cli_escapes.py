"""A mail server must not drive the sysadmin's terminal: the CLI prints server text neutralised.

``smtpdesk test`` runs as a real subprocess against a hostile server whose
greeting, EHLO and refusal carry ANSI escapes, an OSC 52 clipboard write, an
OSC 0 title change, BEL, C1 CSI, a bidi override and Rich markup. No control
byte may reach stdout or stderr; the text itself stays readable (escaped).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.hostile.conftest import HostileFactory
from tests.hostile.helpers import SECRET, smtp_settings
from tests.hostile.server import Hostile, line
from tui.store import SettingsStore

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_TEXT = (
    "\x1b[2J\x1b[H\x1b[31mred\x1b[0m \x1b]52;c;aGFja2VkIGNsaXBib2FyZA==\x07 "
    "\x1b]0;owned title\x1b\\ bell\x07 csi\u009b31m rtl\u202eevil [bold red]x[/]"
)
CONTROL = [chr(c) for c in (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]


async def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), SMTPDESK_PASSWORD=SECRET)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui",
        "--config",
        str(config),
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
async def test_cli_prints_hostile_server_text_neutralised(
    hostile: HostileFactory, tmp_path: Path, json_output: bool
) -> None:
    server = await hostile(
        Hostile(
            greeting=line(f"220 hostile {HOSTILE_TEXT}"),
            replies={
                "EHLO": [line(f"250-hostile {HOSTILE_TEXT}\r\n250 AUTH PLAIN")],
                "MAIL": [line(f"550 5.7.1 {HOSTILE_TEXT}")],
            },
        )
    )
    config = tmp_path / "cfg" / "settings.toml"
    SettingsStore(config).save(smtp_settings(server.port, timeout=2))
    code, out, err = await _cli(config, "test", *(["--json"] if json_output else []))
    assert code == 1, (out, err)
    for stream in (out, err):
        leaked = sorted({f"U+{ord(c):04X}" for c in stream if c in CONTROL and c != "\n"})
        assert not leaked, f"control characters reached the terminal: {leaked}"
        assert "\u202e" not in stream
        assert SECRET not in stream
    if json_output:
        records = [json.loads(raw) for raw in out.splitlines()]
        result = records[-1]
        assert result["failure"]["class"] == "sender_rejected"
        # JSON keeps the exact server text as data (escaped by the JSON encoder).
        assert HOSTILE_TEXT in result["failure"]["reply_text"]
    else:
        assert "\\x1b]52;c;aGFja2VkIGNsaXBib2FyZA==\\x07" in out  # visible, inert
        assert "[bold red]x[/]" in out  # markup printed literally, never interpreted
        assert "FAILED at step 'mail'" in out

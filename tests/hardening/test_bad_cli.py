"""Bad input on the command line: exit 2, one line naming the option, nothing sent.

The wide matrix runs ``tui.cli.main`` in-process (fast) with settings pointing
at a closed loopback port: if a bad value slipped through, the send would
fail with exit 1 instead of 2. A representative set also runs as real
subprocesses against a running sandbox, which must receive nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from transports.settings import Settings
from tui.cli import main
from tui.sandbox import Sandbox
from tui.store import SettingsStore

ROOT = Path(__file__).resolve().parents[2]
LONG = "a" * 10_000


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cfg" / "settings.toml"
    settings = Settings.model_validate(
        {
            "timeout": 1,
            "smtp": {
                "host": "127.0.0.1",
                "port": closed_port(),
                "security": "none",
                "username": "ops@acme.test",
            },
        }
    )
    SettingsStore(path).save(settings)
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "invoice\u202efdp.exe").write_bytes(b"MZ")
    (folder / "ok.pdf").write_bytes(b"%PDF-1.7\n")
    return folder


CASES: list[tuple[list[str], str]] = [
    (["send", "--to", ""], "--to: is empty"),
    (["send", "--to", "   "], "--to: must not start or end with spaces"),
    (["send", "--to", LONG + "@x.test"], "--to: "),
    (["send", "--to", "a\x00b@x.test"], "--to: must not contain a NUL"),
    (["send", "--to", "a@x.test\r\nBcc: victim@x.test"], "--to: must not contain a line break"),
    (["send", "--to", "a\x1b[31m@x.test"], "--to: "),
    (["send", "--to", "a@x.test\u202e"], "--to: "),
    (["send", "--to", "a@bücher.example", "--cc", ""], "--cc: is empty"),
    (["send", "--to", "a@x.test", "--cc", "not-an-address"], "--cc: "),
    (["send", "--to", "a@x.test", "--cc", "b@x.test\n"], "--cc: must not contain a line break"),
    (["send", "--to", "a@x.test", "--subject", "Invoice\r\nBcc: v@x.test"], "--subject: "),
    (["send", "--to", "a@x.test", "--subject", "a\x00b"], "--subject: must not contain a NUL"),
    (["send", "--to", "a@x.test", "--subject", "a\x1b]52;c;aGk=\x07"], "--subject: "),
    (["send", "--to", "a@x.test", "--subject", "a\u2028b"], "--subject: must not contain a line"),
    (["send", "--to", "a@x.test", "--subject", "a\x85b"], "--subject: must not contain a line"),
    (["send", "--to", "a@x.test", "--subject", "Paid\u202edeifirev"], "--subject: "),
    (["send", "--to", "a@x.test", "--attach", ""], "--attach '': is empty"),
    (["send", "--to", "a@x.test", "--attach", "   "], "--attach '   ': is only spaces"),
    (["send", "--to", "a@x.test", "--attach", "/nonexistent/x.pdf"], "No such file"),
    (["send", "--to", "a@x.test", "--attach", "a\x00b"], "must not contain a NUL"),
    (["send", "--to", "a@x.test", "--attach", LONG], "is longer than 4096"),
    (["send", "--to", "a@x.test", "--attach", "FILES"], "is a folder"),
    (["send", "--to", "a@x.test", "--attach", "FILES/invoice\u202efdp.exe"], "bidirectional"),
    (["--config", "a\x00b", "show"], "--config: must not contain a NUL"),
    (["--config", "   ", "show"], "--config: is only spaces"),
    (["--config", LONG, "show"], "--config: is longer than 4096"),
    (["--config", "a\x1b[2Jb", "show"], "--config: must not contain control characters"),
    (["--config", "FILES", "show"], "is a folder, not a settings file"),
    (["--config", "FILES/ok.pdf/settings.toml", "show"], "Not a directory"),
    (["--documents", "x\ny", "documents", "list"], "--documents: must not contain a line"),
    (["test", "--to", ""], "--to: is empty"),
    (["test", "--to", LONG], "--to: "),
    (["test", "--to", "x@x.test\r\n"], "--to: must not contain a line break"),
    (["test", "--to", "\u202e@x.test"], "--to: "),
    (["sandbox", "--port", "-1"], "--port: must be between 0 and 65535"),
    (["sandbox", "--port", "65536"], "--port: must be between 0 and 65535"),
]


def short_id(value: object) -> str | None:
    if isinstance(value, list):
        text = " ".join(str(v) for v in value)
        return ascii(text[:50] + (f"...{len(text)}" if len(text) > 50 else ""))
    return None


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=short_id)
def test_bad_option_is_exit_2_one_line_naming_it(
    argv: list[str],
    expected: str,
    config: Path,
    files: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = [a.replace("FILES", str(files)) for a in argv]
    if argv[0] not in {"--config", "--documents"}:
        argv = ["--config", str(config), *argv]
    before = config.read_bytes()
    monkeypatch.setenv("SMTPDESK_PASSWORD", "not-used-pw")
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("smtpdesk: ") and expected in lines[0], lines[0][:300]
    assert len(lines[0]) < 400, len(lines[0])
    assert "Traceback" not in err and out == ""
    assert config.read_bytes() == before


def test_a_missing_value_is_argparse_usage_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["sandbox", "--port", "abc"])
    assert caught.value.code == 2
    assert "argument --port: invalid int value: 'abc'" in capsys.readouterr().err


SUBPROCESS_CASES = [
    ["send", "--to", "victim@x.test\r\nBcc: all@x.test"],
    ["send", "--to", "a@x.test", "--subject", "Paid\u202edeifirev"],
    ["send", "--to", "a@x.test", "--subject", "a\u2028Bcc: all@x.test"],
    ["send", "--to", "a@x.test", "--cc", LONG],
    ["send", "--to", "a@x.test", "--attach", "FILES/invoice\u202efdp.exe"],
    ["test", "--to", "x@x.test\x1b[2J"],
    ["--config", "   ", "test"],
]


async def test_bad_options_in_a_real_process_send_nothing(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "invoice\u202efdp.exe").write_bytes(b"MZ")
    async with Sandbox(tmp_path / "sandbox") as sandbox:
        config = tmp_path / "cfg" / "settings.toml"
        SettingsStore(config).save(sandbox.settings("starttls", timeout=2))
        before = config.read_bytes()
        env = dict(os.environ, PYTHONPATH=str(ROOT), SMTPDESK_PASSWORD=sandbox.password)

        async def run(argv: list[str]) -> tuple[int, str, str]:
            argv = [a.replace("FILES", str(files)) for a in argv]
            if argv[0] != "--config":
                argv = ["--config", str(config), *argv]
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
            out, err = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode is not None
            return process.returncode, out.decode(), err.decode()

        results = await asyncio.gather(*(run(argv) for argv in SUBPROCESS_CASES))
        for argv, (code, out, err) in zip(SUBPROCESS_CASES, results, strict=True):
            assert code == 2, (argv[:3], out, err)
            assert len(err.splitlines()) == 1 and err.startswith("smtpdesk: --"), err
            assert "Traceback" not in err and "\x1b" not in err
        assert sandbox.messages == []
        assert config.read_bytes() == before

"""The command line, end to end: real subprocesses against the real sandbox.

The sandbox (or a scripted raw server) runs in the test's own event loop; the
CLI runs as ``python -m tui`` through ``asyncio.create_subprocess_exec`` so the
loop keeps serving while the CLI talks to it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from transports.settings import Settings
from tui.sandbox import Sandbox
from tui.store import SettingsStore
from tui.verified import is_verified

ROOT = Path(__file__).resolve().parents[2]
USER = "ops@acme.test"
PASSWORD = "S3cret-pw-42!"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


async def smtpdesk(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float = 60
) -> Run:
    """Run the CLI in a subprocess without blocking the test's event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui",
        *args,
        cwd=ROOT,
        env=env or cli_env(),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """A sandbox whose account's password appears nowhere else in the transcript."""
    async with Sandbox(tmp_path / "sandbox", accounts={USER: PASSWORD}) as running:
        yield running


def write_config(tmp_path: Path, settings: Settings) -> Path:
    path = tmp_path / "cfg" / "settings.toml"
    SettingsStore(path).save(settings)
    return path


def sandbox_settings(sandbox: Sandbox, mode: str = "starttls", **top: object) -> Settings:
    data = sandbox.settings(mode, timeout=5).model_dump(mode="json")  # type: ignore[arg-type]
    data.update(top)
    return Settings.model_validate(data)


def assert_secret_hidden(run: Run, tmp_path: Path) -> None:
    assert PASSWORD not in run.out and PASSWORD not in run.err
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".eml":
            assert PASSWORD.encode() not in path.read_bytes(), path


@dataclass
class RawServer:
    """A scripted TCP server: counts connections, sends ``greeting``, then waits."""

    greeting: bytes | None
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.greeting is not None:
            writer.write(self.greeting)
            await writer.drain()
            while line := await reader.readline():
                if line.upper().startswith(b"QUIT"):
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                writer.write(b"554 5.3.0 no service\r\n")
                await writer.drain()
        else:
            await reader.read()  # never greet
        writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    server = RawServer(greeting=None)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    yield server
    listener.close()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task() and "handle" in repr(task.get_coro()):
            task.cancel()


def raw_settings(port: int) -> Settings:
    return Settings.model_validate(
        {
            "timeout": 2,
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "starttls",
                "username": USER,
            },
        }
    )


# -- test ------------------------------------------------------------------------


async def test_test_success_streams_and_records(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(mail)
    config = write_config(tmp_path, settings)
    assert not is_verified(settings)
    run = await smtpdesk("--config", str(config), "test", env=cli_env(SMTPDESK_PASSWORD=PASSWORD))
    assert run.code == 0, run.out + run.err
    assert any("<-  220" in line for line in run.lines)
    assert any("->~ AUTH PLAIN <redacted>" in line for line in run.lines)
    assert any("<-~ 235" in line for line in run.lines)
    assert run.lines[-1] == "OK: the test passed"
    # every event line starts with the elapsed time
    events = [line for line in run.lines if line[:9].strip().endswith("s")]
    assert len(events) > 10
    assert len(mail.messages) == 1 and mail.messages[0].recipients == (USER,)
    assert is_verified(settings)
    assert_secret_hidden(run, tmp_path)

    show = await smtpdesk("--config", str(config), "show")
    assert "# last test: verified at" in show.out
    changed = sandbox_settings(mail, from_name="Someone Else")
    SettingsStore(config).save(changed)
    show = await smtpdesk("--config", str(config), "show")
    assert "# last test: changed since the last successful test" in show.out


async def test_test_wrong_password_prints_hints(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk(
        "--config", str(config), "test", env=cli_env(SMTPDESK_PASSWORD="wrong-password")
    )
    assert run.code == 1
    failed = next(line for line in run.lines if line.startswith("FAILED"))
    assert "'auth'" in failed and "[auth_failed]" in failed
    assert "535" in run.out
    assert "What to try:" in run.lines
    assert any(line.startswith("  1. ") for line in run.lines)
    assert "wrong-password" not in run.out + run.err
    assert mail.messages == []
    assert "Traceback" not in run.err


async def test_test_json_every_line_parses(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    ok = await smtpdesk(
        "--config", str(config), "test", "--json", env=cli_env(SMTPDESK_PASSWORD=PASSWORD)
    )
    assert ok.code == 0
    records = [json.loads(line) for line in ok.lines]
    assert {r["type"] for r in records[:-1]} == {"event"}
    assert records[-1]["type"] == "result" and records[-1]["ok"] is True
    assert records[-1]["result"]["queue_id"] == mail.messages[0].queue_id
    assert {"step", "direction", "text", "elapsed_ms", "encrypted"} <= records[0].keys()

    bad = await smtpdesk(
        "--config", str(config), "test", "--json", "--probe", env=cli_env(SMTPDESK_PASSWORD="x")
    )
    assert bad.code == 1
    records = [json.loads(line) for line in bad.lines]
    final = records[-1]
    assert final["ok"] is False
    assert final["failure"]["class"] == "auth_failed"
    assert final["failure"]["hints"]


async def test_probe_sends_nothing_and_does_not_verify(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(mail, "tls")
    config = write_config(tmp_path, settings)
    run = await smtpdesk(
        "--config", str(config), "test", "--probe", env=cli_env(SMTPDESK_PASSWORD=PASSWORD)
    )
    assert run.code == 0, run.out + run.err
    assert run.lines[-1] == "OK: the probe passed"
    assert mail.messages == []
    assert not is_verified(settings)


async def test_test_to_other_recipient(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    env = cli_env(SMTPDESK_PASSWORD=PASSWORD)
    run = await smtpdesk("--config", str(config), "test", "--to", "boss@acme.test", env=env)
    assert run.code == 0
    assert mail.messages[0].recipients == ("boss@acme.test",)
    bad = await smtpdesk("--config", str(config), "test", "--to", "a@b.test\r\nBcc: x@y", env=env)
    assert bad.code == 2 and "--to" in bad.err
    assert len(mail.messages) == 1


async def test_config_errors_exit_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[smtp]\nhostt = "mail.example.com"\nusername = "me@example.com"\n')
    commands = (["test"], ["show"], ["send", "--to", "a@b.test"])
    runs = await asyncio.gather(*(smtpdesk("--config", str(config), *c) for c in commands))
    for command, run in zip(commands, runs, strict=True):
        assert run.code == 2, command
        assert str(config) in run.err and "smtp.hostt" in run.err
        assert "did you mean 'host'?" in run.err
        assert "Traceback" not in run.err
    assert config.read_text().startswith("[smtp]\nhostt")

    config.write_text('[smtp]\nhost = "mail.example.com"\nport = "587"\n')
    run = await smtpdesk("--config", str(config), "test")
    assert run.code == 2 and "smtp.port" in run.err and "smtp.from_address" not in run.out

    missing = await smtpdesk("--config", str(tmp_path / "nope.toml"), "test")
    assert missing.code == 2 and "no settings file yet" in missing.err


async def test_no_keyring_is_exit_2_with_alternatives(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk("--config", str(config), "test")
    assert run.code == 2
    assert "No keyring is available" in run.err
    assert "password_command" in run.err and "SMTPDESK_PASSWORD" in run.err
    assert mail.messages == []


async def test_password_command_is_used(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(mail)
    data = settings.model_dump(mode="json")
    secret_file = tmp_path / "secret" / "pw"
    secret_file.parent.mkdir()
    secret_file.write_text(PASSWORD + "\n")
    code = "import sys; print(open(sys.argv[1]).readline().strip())"
    data["smtp"]["password_command"] = [sys.executable, "-c", code, str(secret_file)]
    config = write_config(tmp_path, Settings.model_validate(data))
    run = await smtpdesk("--config", str(config), "test")
    assert run.code == 0, run.out + run.err
    show = await smtpdesk("--config", str(config), "show")
    assert "# password: from the password command:" in show.out
    assert PASSWORD not in show.out  # the command is shown, its output never


async def test_http_relay_test(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail, "http"))
    run = await smtpdesk(
        "--config", str(config), "test", env=cli_env(SMTPDESK_PASSWORD=mail.http_key)
    )
    assert run.code == 0, run.out + run.err
    assert len(mail.messages) == 1 and mail.messages[0].via == "http"
    # No key and no keyring: the request goes without one and the relay's 401 says why.
    keyless = await smtpdesk("--config", str(config), "test")
    assert keyless.code == 1
    assert "sending without a relay key" in keyless.err
    assert any("[http_unauthorized]" in line for line in keyless.lines)


# -- send ------------------------------------------------------------------------


async def test_send_with_attachment_arrives_intact(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(
        mail, copy_to="archive@acme.test", reply_to="billing@acme.test", from_name="ACME Ltd"
    )
    config = write_config(tmp_path, settings)
    blob = os.urandom(70_000) + b"\r\n.\r\n\x00\xff"
    attachment = tmp_path / "invoice 42.pdf"
    attachment.write_bytes(blob)
    text = tmp_path / "notes.txt"
    text.write_text("Grüße — €\n")
    run = await smtpdesk(
        "--config",
        str(config),
        "send",
        "--to",
        "customer@example.test",
        "--cc",
        "boss@acme.test",
        "--subject",
        "Invoice 42 — Müller",
        "--body",
        "Please find the invoice attached.",
        "--attach",
        str(attachment),
        "--attach",
        str(text),
        env=cli_env(SMTPDESK_PASSWORD=PASSWORD),
    )
    assert run.code == 0, run.out + run.err
    assert len(mail.messages) == 1
    captured = mail.messages[0]
    assert set(captured.recipients) == {
        "customer@example.test",
        "boss@acme.test",
        "archive@acme.test",
    }
    message = email.message_from_bytes(captured.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Invoice 42 — Müller"
    assert message["Reply-To"] == "billing@acme.test"
    assert "archive@acme.test" not in captured.data.decode("ascii", "replace")
    parts = {
        part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()
    }
    assert parts["invoice 42.pdf"] == blob
    assert parts["notes.txt"] == "Grüße — €\n".encode()
    body = message.get_body(("plain",))
    assert body is not None and "invoice attached" in body.get_content()
    assert f"queue id: {captured.queue_id}" in run.lines
    assert f"message id: {message['Message-ID']}" in run.lines
    assert_secret_hidden(run, tmp_path)


async def test_send_json(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    body = tmp_path / "body.txt"
    body.write_text("from a file\n")
    run = await smtpdesk(
        "--config",
        str(config),
        "send",
        "--to",
        "a@example.test",
        "--body-file",
        str(body),
        "--json",
        env=cli_env(SMTPDESK_PASSWORD=PASSWORD),
    )
    assert run.code == 0, run.err
    records = [json.loads(line) for line in run.lines]
    assert records[-1]["type"] == "result" and records[-1]["ok"] is True
    assert records[-1]["result"]["queue_id"] == mail.messages[0].queue_id
    assert b"from a file" in mail.messages[0].data


async def test_send_failure_exit_1_with_hints(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk(
        "--config",
        str(config),
        "send",
        "--to",
        "a@example.test",
        env=cli_env(SMTPDESK_PASSWORD="nope"),
    )
    assert run.code == 1
    assert any(line.startswith("FAILED at step 'auth'") for line in run.lines)
    assert "What to try:" in run.lines


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--to", "a@example.test", "--subject", "Hi\r\nBcc: victim@example.test"], "--subject"),
        (["--to", "a@example.test", "--subject", "Hi\nthere"], "--subject"),
        (["--to", "a@example.test\r\nBcc: victim@example.test"], "--to"),
        (["--to", "a@example.test", "--cc", "b@example.test\n"], "--cc"),
        (["--to", "not an address"], "--to"),
        (["--to", "a@example.test", "--attach", "/nonexistent/file.pdf"], "--attach"),
        (["--to", "a@example.test", "--attach", "/"], "--attach"),
        (["--to", "a@example.test", "--body-file", "/nonexistent"], "--body-file"),
    ],
)
async def test_send_refuses_bad_input_before_connecting(
    raw_server: RawServer, tmp_path: Path, args: list[str], field: str
) -> None:
    raw_server.greeting = b"220 ready\r\n"
    config = write_config(tmp_path, raw_settings(raw_server.port))
    run = await smtpdesk(
        "--config", str(config), "send", *args, env=cli_env(SMTPDESK_PASSWORD=PASSWORD)
    )
    assert run.code == 2, run.out + run.err
    assert run.err.startswith(f"smtpdesk: {field}"), run.err
    assert len(run.err.splitlines()) == 1
    assert raw_server.connections == 0


async def test_send_usage_errors(tmp_path: Path) -> None:
    run = await smtpdesk("send")
    assert run.code == 2 and "--to" in run.err
    run = await smtpdesk("send", "--to", "a@b.test", "--body", "x", "--body-file", "y")
    assert run.code == 2 and "not allowed with" in run.err
    run = await smtpdesk("frobnicate")
    assert run.code == 2


# -- terminal safety and cancellation ---------------------------------------------------


async def test_server_text_cannot_drive_the_terminal(raw_server: RawServer, tmp_path: Path) -> None:
    raw_server.greeting = b"220 evil\x1b]0;pwned\x07\x1b[2J\xc2\x9b ready\r\n"
    config = write_config(tmp_path, raw_settings(raw_server.port))
    run = await smtpdesk("--config", str(config), "test", env=cli_env(SMTPDESK_PASSWORD="x"))
    assert run.code == 1
    assert "\x1b" not in run.out and "\x07" not in run.out and "\x9b" not in run.out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b ready" in run.out


async def test_ctrl_c_during_a_test_is_cancelled_130(raw_server: RawServer, tmp_path: Path) -> None:
    data = raw_settings(raw_server.port).model_dump(mode="json")
    data["timeout"] = 30
    config = write_config(tmp_path, Settings.model_validate(data))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui",
        "--config",
        str(config),
        "test",
        cwd=ROOT,
        env=cli_env(SMTPDESK_PASSWORD="x"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    seen = []
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "the CLI ended before connecting"
        seen.append(line)
        if "connected" in line:
            break
    await asyncio.sleep(0.2)  # now waiting for a greeting that never comes
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 130
    assert "cancelled" in err.decode()
    assert "Traceback" not in err.decode()
    assert raw_server.connections == 1


# -- show ------------------------------------------------------------------------------


async def test_show_text_and_json(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(mail)
    config = write_config(tmp_path, settings)
    run = await smtpdesk("--config", str(config), "show", env=cli_env(SMTPDESK_PASSWORD=PASSWORD))
    assert run.code == 0
    assert f"# config file: {config} (from --config)" in run.lines
    assert "# password: from the SMTPDESK_PASSWORD environment variable" in run.lines
    assert "# last test: never tested" in run.lines
    assert f'host = "{mail.host}"' in run.lines
    assert PASSWORD not in run.out
    as_json = await smtpdesk(
        "show", "--json", env=cli_env(SMTPDESK_CONFIG=str(config), SMTPDESK_PASSWORD=PASSWORD)
    )
    assert as_json.code == 0
    (record,) = [json.loads(line) for line in as_json.lines]
    assert record["config_path"] == str(config)
    assert record["config_from"] == "SMTPDESK_CONFIG"
    assert record["password"]["kind"] == "env"
    assert record["verified"]["state"] == "never"
    assert Settings.model_validate(record["settings"]) == settings


async def test_show_without_a_file_prints_a_template(tmp_path: Path) -> None:
    run = await smtpdesk("--config", str(tmp_path / "new.toml"), "show")
    assert run.code == 0
    assert "# (no settings file yet" in run.out
    assert "[smtp]" in run.lines and "[documents]" in run.lines


# -- password --------------------------------------------------------------------------


async def test_password_set_and_clear(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(mail)
    config = write_config(tmp_path, settings)
    keyring_file = tmp_path / "test-keyring.json"
    env = cli_env(
        PYTHON_KEYRING_BACKEND="tests.secrets.keyrings.FileKeyring",
        SMTPDESK_TEST_KEYRING_FILE=str(keyring_file),
    )
    run = await smtpdesk(
        "--config",
        str(config),
        "password",
        "set",
        "--stdin",
        env=env,
        stdin=f"{PASSWORD}\n".encode(),
    )
    assert run.code == 0, run.err
    assert PASSWORD not in run.out + run.err
    entries = json.loads(keyring_file.read_text())
    assert entries == {f"smtpdesk/{USER}@{mail.host}": PASSWORD}
    show = await smtpdesk("--config", str(config), "show", env=env)
    assert "# password: from the system keyring" in show.out
    test = await smtpdesk("--config", str(config), "test", env=env)
    assert test.code == 0, test.out + test.err
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    assert PASSWORD.encode() not in config.read_bytes()
    cleared = await smtpdesk("--config", str(config), "password", "clear", env=env)
    assert cleared.code == 0
    assert json.loads(keyring_file.read_text()) == {}
    again = await smtpdesk("--config", str(config), "password", "clear", env=env)
    assert again.code == 0


async def test_password_set_without_keyring_is_exit_2(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk(
        "--config", str(config), "password", "set", "--stdin", stdin=f"{PASSWORD}\n".encode()
    )
    assert run.code == 2
    assert "No keyring is available on this machine" in run.err
    assert 'password_command = ["pass", "show", "mail/smtp"]' in run.err
    assert PASSWORD not in run.err + run.out
    not_tty = await smtpdesk("--config", str(config), "password", "set")
    assert not_tty.code == 2 and "--stdin" in not_tty.err
    clear = await smtpdesk("--config", str(config), "password", "clear")
    assert clear.code == 2 and "No keyring" in clear.err


# -- sandbox and demo ------------------------------------------------------------------


async def test_sandbox_command_serves_until_ctrl_c(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui",
        "sandbox",
        "--port",
        "0",
        "--tls-port",
        "0",
        "--http-port",
        "0",
        "--folder",
        str(tmp_path / "sb"),
        cwd=ROOT,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Press Ctrl+C"):
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "the sandbox ended early"
        lines.append(line.rstrip("\n"))
    assert any("login demo@smtpdesk.test" in line for line in lines)
    start = lines.index("settings.toml for it (paste into the settings file, or use --config):")
    snippet = "\n".join(line[2:] for line in lines[start + 1 : -1])
    config = tmp_path / "pasted.toml"
    config.write_text(snippet + "\n")
    run = await smtpdesk(
        "--config", str(config), "test", env=cli_env(SMTPDESK_PASSWORD="sandbox-pass")
    )
    assert run.code == 0, run.out + run.err
    captured = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
    assert captured.startswith("captured ")
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    assert "Traceback" not in err.decode()
    assert list((tmp_path / "sb").glob("*.eml"))


async def test_sandbox_port_in_use_is_exit_2(tmp_path: Path) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        run = await smtpdesk("sandbox", "--port", str(port), "--folder", str(tmp_path / "sb"))
    finally:
        blocker.close()
    assert run.code == 2
    assert "--port" in run.err and "Traceback" not in run.err


async def test_demo_commands_need_no_account(isolated_environment: Path) -> None:
    test = await smtpdesk("--demo", "test")
    assert test.code == 0, test.out + test.err
    assert test.lines[-1] == "OK: the test passed"
    assert any("->~ AUTH PLAIN <redacted>" in line for line in test.lines)
    send = await smtpdesk("--demo", "send", "--to", "x@y.test", "--subject", "hello")
    assert send.code == 0, send.out + send.err
    assert any(line.startswith("demo: the sandbox captured") for line in send.lines)
    show = await smtpdesk("--demo", "show")
    assert show.code == 0 and 'preset = "sandbox"' in show.lines
    as_json = await smtpdesk("--demo", "test", "--json")
    assert as_json.code == 0
    assert all(json.loads(line)["type"] in {"event", "result"} for line in as_json.lines)
    # The demo never touches the real config or data dirs.
    assert not (isolated_environment / ".config" / "smtpdesk").exists()
    assert not (isolated_environment / ".local" / "share" / "smtpdesk").exists()


# -- start-up ----------------------------------------------------------------------------


async def test_help_everywhere() -> None:
    commands = [
        [],
        ["test"],
        ["send"],
        ["show"],
        ["password"],
        ["password", "set"],
        ["password", "clear"],
        ["sandbox"],
        ["documents"],
        ["documents", "list"],
        ["documents", "render"],
        ["log"],
    ]
    runs = await asyncio.gather(*(smtpdesk(*args, "--help") for args in commands))
    for args, run in zip(commands, runs, strict=True):
        assert run.code == 0, args
        assert run.out.startswith("usage: smtpdesk"), args
    version = await smtpdesk("--version")
    assert version.code == 0 and version.out.startswith("smtpdesk ")


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "import tui.cli"],
        ["-m", "tui", "--help"],
        ["-m", "tui", "documents", "list"],  # the PDF renderer only for render and send
        ["-m", "tui", "log"],
    ],
)
def test_cli_imports_no_textual_nor_heavy_libraries(args: list[str]) -> None:
    """-X importtime lists every module imported, whatever the code path."""
    import subprocess

    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert "tui.cli" in imported
    heavy = {m for m in imported if m.split(".")[0] in {"textual", "rich", "fpdf", "httpx"}}
    assert not heavy


START_ONLY = {"asyncio", "importlib.metadata", "email_validator", "keyring"}
"""Modules the start of the CLI does without (issue 8: a start within 1.5× of
``import pydantic, tomllib``): each costs 25-100 ms and only some commands need it."""


def _imported(*args: str, env: dict[str, str]) -> set[str]:
    import subprocess

    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}


@pytest.mark.parametrize("args", [["-c", "import tui.cli"], ["-m", "tui", "--help"]])
def test_cli_start_imports_nothing_it_does_not_need(args: list[str]) -> None:
    """asyncio, the package metadata (``--version`` only), email-validator (the first
    address checked) and keyring are imported when used, not at start."""
    assert not _imported(*args, env=cli_env()) & START_ONLY


def test_version_looks_the_metadata_up_only_when_asked() -> None:
    """``--version`` still prints the installed version (read on demand)."""
    assert "importlib.metadata" in _imported("-m", "tui", "--version", env=cli_env())


async def test_start_up_turns_the_collector_back_on(tmp_path: Path) -> None:
    """The collector is off only while the process starts up, whatever the command does."""
    config = write_config(
        tmp_path,
        Settings.model_validate({"smtp": {"host": "mail.test", "username": "me@mail.test"}}),
    )
    code = (
        "import gc, sys\n"
        "from tui.cli import main\n"
        "sys.argv = ['smtpdesk', *sys.argv[1:]]\n"
        "try:\n"
        "    code = main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('exit', code, 'enabled', gc.isenabled(), 'frozen', gc.get_freeze_count() > 0)\n"
    )
    env = cli_env(SMTPDESK_CONFIG=str(config), XDG_DATA_HOME=str(tmp_path))
    for argv, exit_code in ((["show"], 0), (["--help"], 0), (["--no-such-option"], 2)):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, *argv, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert out.decode().splitlines()[-1].startswith(f"exit {exit_code} enabled True"), argv
    assert out.decode().splitlines()[-1].endswith("frozen True")


def test_in_process_calls_leave_the_collector_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called with arguments (as by a program or a test), main() freezes nothing."""
    import gc

    from tui.cli import main

    config = write_config(
        tmp_path,
        Settings.model_validate({"smtp": {"host": "mail.test", "username": "me@mail.test"}}),
    )
    monkeypatch.setenv("SMTPDESK_CONFIG", str(config))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    frozen = gc.get_freeze_count()
    assert main(["show"]) == 0
    with pytest.raises(SystemExit):
        main(["--help"])
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    """`smtpdesk show | head -1`: exit 141 (128 + SIGPIPE), no error, no traceback."""
    config = write_config(
        tmp_path,
        Settings.model_validate({"smtp": {"host": "mail.test", "username": "me@mail.test"}}),
    )
    env = cli_env(SMTPDESK_CONFIG=str(config), XDG_DATA_HOME=str(tmp_path))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tui", "show"],
            cwd=ROOT, env=env, stdout=write_end, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""

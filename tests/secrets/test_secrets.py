"""Password sources: environment, password command, keyring — and never a file."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.errors import PasswordSetError

from tests.secrets.keyrings import LockedKeyring, MemoryKeyring, TypedBackend
from transports.settings import Settings
from tui.secrets import (
    NO_KEYRING_HELP,
    SERVICE,
    KeyringUnavailable,
    SecretsError,
    clear_password,
    get_password,
    keyring_user,
    password_source,
    set_password,
)
from tui.store import SettingsStore

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SECRET = "Tr0ub4dor&3 ü"


def smtp_settings(command: list[str] | None = None, username: str = "me@example.com") -> Settings:
    return Settings.model_validate(
        {
            "smtp": {
                "host": "mail.example.com",
                "username": username,
                "from_address": "me@example.com",
                "password_command": command or [],
            }
        }
    )


def py_command(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The headless case: keyring's fail backend."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def password_in_no_file(isolated_environment: Path, tmp_path: Path) -> Iterator[None]:
    """After every test, no file under the home (config and data dirs) holds the secret."""
    yield
    needles = [SECRET.encode(), base64.b64encode(SECRET.encode())]
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"the password is in {path}"


def test_keyring_user() -> None:
    assert keyring_user(smtp_settings()) == "me@example.com@mail.example.com"
    http = Settings.model_validate(
        {
            "protocol": "http",
            "reply_to": "me@example.com",
            "http": {"url": "https://relay.example:8443/send"},
        }
    )
    assert keyring_user(http) == "relay.example"


def test_keyring_round_trip(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    settings = smtp_settings()
    SettingsStore(tmp_path / "home" / ".config" / "smtpdesk" / "settings.toml").save(settings)
    assert get_password(settings) is None
    assert password_source(settings).kind == "none"
    assert "smtpdesk password set" in password_source(settings).description
    set_password(settings, SECRET)
    assert memory_keyring.entries == {(SERVICE, "me@example.com@mail.example.com"): SECRET}
    assert get_password(settings) == SECRET
    source = password_source(settings)
    assert source.kind == "keyring"
    assert SECRET not in source.description
    clear_password(settings)
    assert memory_keyring.entries == {}
    clear_password(settings)  # no entry: not an error
    assert get_password(settings) is None


def test_precedence_env_then_command_then_keyring(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = py_command("print('from-command')")
    settings = smtp_settings(command)
    set_password(settings, "from-keyring")
    monkeypatch.setenv("SMTPDESK_PASSWORD", "from-env")
    assert get_password(settings) == "from-env"
    assert password_source(settings).kind == "env"
    monkeypatch.setenv("SMTPDESK_PASSWORD", "")  # empty counts as not set
    assert get_password(settings) == "from-command"
    source = password_source(settings)
    assert source.kind == "command" and "from-command" in source.description
    monkeypatch.delenv("SMTPDESK_PASSWORD")
    assert get_password(smtp_settings()) == "from-keyring"


def test_no_username_needs_no_password(
    no_keyring: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    settings = smtp_settings(py_command(f"open({str(marker)!r}, 'w'); print('x')"), username="")
    monkeypatch.setenv("SMTPDESK_PASSWORD", "unused")
    assert get_password(settings) is None
    assert password_source(settings).kind == "none"
    assert not marker.exists()


def test_command_first_line_only() -> None:
    settings = smtp_settings(py_command("print('s3cret \\r'.rstrip('\\r')); print('url: x')"))
    assert get_password(settings) == "s3cret "
    crlf = smtp_settings(py_command("import sys; sys.stdout.write('pw\\r\\nmore\\r\\n')"))
    assert get_password(crlf) == "pw"
    no_newline = smtp_settings(py_command("import sys; sys.stdout.write('pw')"))
    assert get_password(no_newline) == "pw"


def test_command_failure_shows_stderr() -> None:
    code = (
        "import sys; print('half-a-secret'); "
        "sys.stderr.write('gpg: decryption failed\\n'); sys.exit(3)"
    )
    with pytest.raises(SecretsError) as caught:
        get_password(smtp_settings(py_command(code)))
    message = str(caught.value)
    assert "exit status 3" in message
    assert "gpg: decryption failed" in message
    assert "half-a-secret" not in message


def test_command_that_hangs_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(SecretsError) as caught:
        get_password(smtp_settings(py_command("import time; time.sleep(30)")), command_timeout=0.5)
    assert time.monotonic() - start < 5
    assert "did not finish within 0.5 s" in str(caught.value)


def test_command_that_prints_nothing() -> None:
    with pytest.raises(SecretsError, match="printed nothing"):
        get_password(smtp_settings(py_command("pass")))
    with pytest.raises(SecretsError, match="printed nothing"):
        get_password(smtp_settings(py_command("print(); print('second')")))


def test_command_that_prints_a_megabyte() -> None:
    big = py_command("import sys; sys.stdout.write('pw\\n' + 'x' * 1_000_000)")
    assert get_password(smtp_settings(big)) == "pw"
    one_line = py_command("import sys; sys.stdout.write('x' * 1_000_000)")
    with pytest.raises(SecretsError, match="more than 64 KiB on its first line"):
        get_password(smtp_settings(one_line))


def test_shell_metacharacters_are_never_interpreted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    nasty = f"$(touch {marker}); `touch {marker}` | cat > {marker} && echo *"
    echo = py_command("import sys; print(sys.argv[1])", nasty)
    assert get_password(smtp_settings(echo)) == nasty
    as_program = [f"echo hi; touch {marker}"]
    with pytest.raises(SecretsError, match="was not found"):
        get_password(smtp_settings(as_program))
    assert not marker.exists()


def test_missing_command() -> None:
    with pytest.raises(SecretsError) as caught:
        get_password(smtp_settings(["/nonexistent/pass", "show", "mail"]))
    assert "'/nonexistent/pass' was not found" in str(caught.value)


def test_no_keyring_is_explained_in_plain_words(no_keyring: None) -> None:
    settings = smtp_settings()
    with pytest.raises(SecretsError) as caught:
        get_password(settings)
    message = str(caught.value)
    assert isinstance(caught.value, KeyringUnavailable)
    assert message.startswith(NO_KEYRING_HELP)
    assert 'password_command = ["pass", "show", "mail/smtp"]' in message
    assert "SMTPDESK_PASSWORD" in message
    with pytest.raises(SecretsError) as caught_set:
        set_password(settings, SECRET)
    assert NO_KEYRING_HELP in str(caught_set.value)
    assert SECRET not in str(caught_set.value)
    with pytest.raises(SecretsError):
        clear_password(settings)
    source = password_source(settings)
    assert source.kind == "none" and "no keyring" in source.description


def test_no_keyring_is_no_error_when_another_source_gives_it(
    no_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_password(smtp_settings(py_command("print('cmd')"))) == "cmd"
    monkeypatch.setenv("SMTPDESK_PASSWORD", "env")
    assert get_password(smtp_settings()) == "env"


def test_locked_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        with pytest.raises(SecretsError) as caught:
            get_password(smtp_settings())
        assert "KeyringLocked" in str(caught.value)
        assert NO_KEYRING_HELP in str(caught.value)
    finally:
        keyring.set_keyring(previous)


class EchoingKeyring(TypedBackend):
    """A badly behaved backend whose error repeats the password."""

    priority = -1

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError(f"cannot store {password!r} for {username}")

    def delete_password(self, service: str, username: str) -> None:
        return None


def test_secret_never_in_an_error_message() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(EchoingKeyring())
    try:
        with pytest.raises(SecretsError) as caught:
            set_password(smtp_settings(), SECRET)
        assert SECRET not in str(caught.value)
        assert "<redacted>" in str(caught.value)
    finally:
        keyring.set_keyring(previous)


def test_set_password_refuses_empty_and_line_breaks(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(SecretsError, match="empty"):
        set_password(smtp_settings(), "")
    with pytest.raises(SecretsError, match="line break"):
        set_password(smtp_settings(), "a\nb")
    assert memory_keyring.entries == {}


def test_keyring_configuration_is_honoured_in_a_fresh_process(tmp_path: Path) -> None:
    """PYTHON_KEYRING_BACKEND picks the backend; the fail backend gives the help text."""
    code = (
        "from transports.settings import Settings; from tui.secrets import get_password, "
        "SecretsError\n"
        "s = Settings.model_validate({'smtp': {'host': 'h.example', 'username': 'me@h.example'}})\n"
        "try:\n    print('got', get_password(s))\n"
        "except SecretsError as e:\n    print('error', str(e).splitlines()[0])\n"
    )
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.startswith("error No keyring is available on this machine"), out.stderr
    store = tmp_path / "kr.json"
    store.write_text('{"smtpdesk/me@h.example@h.example": "from-file-backend"}')
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "tests.secrets.keyrings.FileKeyring",
        "SMTPDESK_TEST_KEYRING_FILE": str(store),
    }
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "got from-file-backend", out.stderr


@pytest.mark.skipif(sys.platform == "darwin", reason="the macOS backend is kept on macOS")
def test_keyring_loads_without_the_macos_backends_library_probe() -> None:
    """``load_keyring`` off macOS: the macOS backend is loaded by keyring's discovery
    without its ``find_library`` probe (ldconfig and gcc subprocesses), and it is
    still not viable, as it never is off macOS; the other backends are untouched."""
    code = (
        "import sys\n"
        "from tui.secrets import load_keyring\n"
        "keyring = load_keyring()\n"
        "from keyring.backends import SecretService, macOS\n"
        "try:\n"
        "    macOS.Keyring.priority\n"
        "except RuntimeError as exc:\n"
        "    print('not viable:', exc)\n"
        "print('ctypes.util' in sys.modules, SecretService.Keyring.__module__)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "not viable: macOS required",
        "False keyring.backends.SecretService",
    ]

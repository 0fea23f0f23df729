"""Hostile password commands: never a shell, bounded output, killed on timeout, no orphans.

Decision on stderr: when the command fails, the end of its stderr is shown to
the user (it is their own command; its complaint is how they fix it), with the
first line it printed on stdout redacted from it; nothing here is logged.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from transports.settings import Settings
from tui.secrets import MAX_OUTPUT, SecretsError, get_password

PW = "Pc-Secret-4711"


def settings_with(command: list[str]) -> Settings:
    return Settings.model_validate(
        {
            "smtp": {
                "host": "smtp.example.test",
                "username": "me@example.test",
                "password_command": command,
            }
        }
    )


Py = Callable[..., list[str]]


@pytest.fixture
def py(tmp_path: Path) -> Py:
    """``py(code, *args)``: a command running ``code`` from a file (settings forbid line breaks)."""
    counter = iter(range(1000))

    def make(code: str, *args: str) -> list[str]:
        script = tmp_path / "scripts" / f"command{next(counter)}.py"
        script.parent.mkdir(exist_ok=True)
        script.write_text(code)
        return [sys.executable, str(script), *args]

    return make


METACHARACTERS = (
    "; touch {d}/semi && touch {d}/and | touch {d}/pipe $(touch {d}/subst) "
    "`touch {d}/tick` * ~ > {d}/redirect"
)


def test_shell_metacharacters_are_never_interpreted(tmp_path: Path, py: Py) -> None:
    target = tmp_path / "target"
    target.mkdir()
    literal = METACHARACTERS.format(d=target)
    password = get_password(
        settings_with(py("import sys; print(sys.argv[1])", literal)), command_timeout=5
    )
    assert password == literal  # one argv item, exactly as written
    assert list(target.iterdir()) == []


def test_a_shell_line_as_the_program_name_is_just_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="was not found"):
        get_password(settings_with([f"echo {PW}; touch {tmp_path}/ran"]), command_timeout=5)
    assert not (tmp_path / "ran").exists()


def test_one_megabyte_of_output_first_line_used(py: Py) -> None:
    code = f"import sys; print({PW!r}); sys.stdout.write('x' * (1024 * 1024)); print()"
    start = time.monotonic()
    assert get_password(settings_with(py(code)), command_timeout=5) == PW
    assert time.monotonic() - start < 5


def test_one_megabyte_on_one_line_is_not_a_password(py: Py) -> None:
    code = "import sys; sys.stdout.write('y' * (1024 * 1024))"
    with pytest.raises(SecretsError, match=f"more than {MAX_OUTPUT // 1024} KiB") as caught:
        get_password(settings_with(py(code)), command_timeout=5)
    assert len(str(caught.value)) < 500


def test_endless_output_is_stopped_by_the_timeout(py: Py) -> None:
    code = "import sys\nwhile True: sys.stdout.write('z' * 65536)"
    start = time.monotonic()
    with pytest.raises(SecretsError, match="did not finish within 1 s"):
        get_password(settings_with(py(code)), command_timeout=1)
    assert time.monotonic() - start < 3


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("holds_stdout", [True, False], ids=["child-holds-pipe", "child-detached"])
def test_never_exits_whole_process_group_killed(tmp_path: Path, holds_stdout: bool, py: Py) -> None:
    """The command and the child it started are both gone after the timeout."""
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        f" stdout=None if {holds_stdout} else subprocess.DEVNULL)\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    with pytest.raises(SecretsError, match="did not finish"):
        get_password(settings_with(py(code)), command_timeout=1.5)
    assert time.monotonic() - start < 4
    deadline = time.monotonic() + 3
    numbers = [int(n) for n in pids.read_text().split()]
    while any(_alive(pid) for pid in numbers) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [pid for pid in numbers if _alive(pid)]
    assert not orphans, f"still running: {orphans}"


def test_background_child_left_holding_stdout_is_killed(tmp_path: Path, py: Py) -> None:
    """The command prints and exits, its child keeps the pipe open: no orphan remains."""
    pidfile = tmp_path / "child"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        f"print({PW!r}, flush=True)\n"
    )
    try:
        get_password(settings_with(py(code)), command_timeout=1.5)
    except SecretsError as exc:
        assert PW not in str(exc)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the child of the password command was left running"


def test_failure_stderr_is_shown_without_the_password(
    caplog: pytest.LogCaptureFixture, py: Py
) -> None:
    caplog.set_level(logging.DEBUG)
    code = (
        "import sys\n"
        f"print({PW!r})\n"
        f"sys.stderr.write('gpg: decryption failed for ' + {PW!r} + '\\n')\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(SecretsError) as caught:
        get_password(settings_with(py(code)), command_timeout=5)
    message = str(caught.value)
    assert "exit status 2" in message and "gpg: decryption failed" in message
    assert PW not in message
    assert not any(PW in record.getMessage() for record in caplog.records)


def test_huge_stderr_is_bounded(py: Py) -> None:
    code = "import sys; sys.stderr.write('e' * (1024 * 1024)); sys.exit(1)"
    with pytest.raises(SecretsError) as caught:
        get_password(settings_with(py(code)), command_timeout=5)
    assert len(str(caught.value)) < 2500


@pytest.mark.skipif(not os.path.exists("/proc"), reason="needs /proc to see processes")
def test_proc_is_there() -> None:
    assert _alive(os.getpid())

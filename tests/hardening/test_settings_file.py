"""The settings file under hostile conditions: links, loose permissions, a
read-only folder, and two programs saving at once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from transports.settings import Settings
from tui.store import SettingsStore, StoreError

from .privileges import ROOT, unprivileged_python


def settings(timeout: float = 20, name: str = "ACME Ltd") -> Settings:
    return Settings.model_validate(
        {
            "from_name": name,
            "timeout": timeout,
            "smtp": {"host": "smtp.example.com", "port": 587, "username": "me@example.com"},
        }
    )


def test_symlinked_file_is_written_through_and_the_link_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "smtpdesk.toml"
    real.parent.mkdir()
    SettingsStore(real).save(settings(10))
    link = tmp_path / "config" / "settings.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    store = SettingsStore(link)
    assert store.load().timeout == 10
    store.save(settings(11))
    assert link.is_symlink() and link.resolve() == real
    assert SettingsStore(real).load().timeout == 11
    # The backup and the lock live beside the real file, not the link.
    assert (real.parent / "smtpdesk.toml.bak").exists()
    assert store.lock_path == real.parent / "smtpdesk.toml.lock"
    assert not (link.parent / "settings.toml.bak").exists()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_world_readable_file_is_made_private_and_the_user_told_once(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    SettingsStore(path).save(settings())
    os.chmod(path, 0o644)  # as an older version (or an editor) left it
    store = SettingsStore(path)
    assert store.load() == settings()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(store.notices) == 1
    assert "0644" in store.notices[0] and "0600" in store.notices[0]
    assert store.notices[0].startswith(str(path))
    again = SettingsStore(path)
    again.load()
    assert again.notices == []


async def test_cli_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    SettingsStore(path).save(settings())
    os.chmod(path, 0o640)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def show() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tui", "--config", str(path), "show"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = show()
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("now private (0600)") == 1, first.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = show()
    assert second.returncode == 0 and "private" not in second.stderr


SAVE_IN_READ_ONLY_FOLDER = """
import sys
from pathlib import Path
from transports.settings import Settings
from tui.store import SettingsStore, StoreError

store = SettingsStore(Path(sys.argv[1]))
old = store.load()
try:
    store.save(old.model_copy(update={"timeout": 99.0}))
except StoreError as exc:
    print(exc)
    raise SystemExit(3)
"""


def test_read_only_folder_is_a_clear_error_and_nothing_is_lost(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "settings.toml"
    SettingsStore(path).save(settings(10))
    before = path.read_bytes()
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o555)
    try:
        result = unprivileged_python(SAVE_IN_READ_ONLY_FOLDER, str(path))
    finally:
        os.chmod(folder, 0o700)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip().startswith(f"{path}: cannot write the settings file: ")
    assert "Permission denied" in result.stdout
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["settings.toml", "settings.toml.lock"]


def test_a_folder_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    store = SettingsStore(blocker / "settings.toml")
    with pytest.raises(StoreError) as caught:
        store.save(settings())
    assert str(caught.value).startswith(f"{blocker / 'settings.toml'}: cannot write")
    assert blocker.read_text() == "a file"


def test_a_change_by_another_program_since_load_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    SettingsStore(path).save(settings(10))
    mine = SettingsStore(path)
    mine.load()
    SettingsStore(path).save(settings(30, name="Other Program"))
    with pytest.raises(StoreError) as caught:
        mine.save(settings(20))
    assert "changed by another program since it was loaded" in str(caught.value)
    assert SettingsStore(path).load() == settings(30, name="Other Program")
    # Loading again picks up their version; saving then works.
    assert mine.load().from_name == "Other Program"
    mine.save(settings(20))
    assert SettingsStore(path).load().timeout == 20
    # Deleted by someone else since the load: nothing of theirs to lose, so the
    # save writes it again.
    path.unlink()
    mine.save(settings(21))
    assert SettingsStore(path).load().timeout == 21


def test_replacing_an_unreadable_file_still_checks_for_changes(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("not [toml")
    store = SettingsStore(path)
    with pytest.raises(StoreError):
        store.load()
    store.save(settings())  # nobody changed it: the user may replace it
    assert store.backup_path.read_text() == "not [toml"
    path.write_text("also [not toml")
    fresh = SettingsStore(path)
    with pytest.raises(StoreError):
        fresh.load()
    path.write_text("changed again [")
    with pytest.raises(StoreError, match="changed by another program"):
        fresh.save(settings())


CONCURRENT_SAVER = """
import sys
from pathlib import Path
from transports.settings import Settings
from tui.store import SettingsStore, StoreError

path, name = Path(sys.argv[1]), sys.argv[2]
store = SettingsStore(path)
loaded = store.load()
print("loaded", flush=True)
sys.stdin.readline()  # both have loaded the same version: go
try:
    store.save(loaded.model_copy(update={"from_name": name, "timeout": float(len(name))}))
except StoreError as exc:
    print("told:", exc, flush=True)
    raise SystemExit(3)
print("saved", flush=True)
"""


@pytest.mark.parametrize("round_", range(3))
def test_two_programs_saving_at_once_one_wins_whole_the_other_is_told(
    tmp_path: Path, round_: int
) -> None:
    path = tmp_path / "settings.toml"
    SettingsStore(path).save(settings(10))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    names = ["First Program", "Second Program Ltd"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SAVER, str(path), name],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "loaded"
    for child in children:  # released together: the saves race for the lock
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=60) for child in children]
    codes = sorted(child.returncode for child in children)
    assert codes == [0, 3], outputs
    (winner,) = [n for n, c in zip(names, children, strict=True) if c.returncode == 0]
    (loser,) = [o for o, c in zip(outputs, children, strict=True) if c.returncode == 3]
    assert "changed by another program since it was loaded" in loser[0]
    final = SettingsStore(path).load()
    assert final.from_name == winner and final.timeout == len(winner)
    assert SettingsStore(path.with_name("settings.toml.bak")).load().timeout == 10


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(30)
"""


def test_a_save_waits_for_the_lock_and_gives_up_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.store

    monkeypatch.setattr(tui.store, "LOCK_TIMEOUT", 0.3)
    path = tmp_path / "settings.toml"
    store = SettingsStore(path)
    store.save(settings(10))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store.lock_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="another program has been saving"):
            store.save(settings(11))
        assert SettingsStore(path).load().timeout == 10
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    store.save(settings(11))  # the lock died with its holder
    assert SettingsStore(path).load().timeout == 11

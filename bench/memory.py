"""Benchmark 6: peak RSS. The TUI after opening (headless), a process that has
opened the TUI, made a test send and then sent a batch of N invoices (N = 100 and 500: the peak
must not grow with N), and the CLI's ``smtpdesk test``. Targets: TUI ≤ 150 MB;
batch flat in N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench import CLI, PYTHON, Row, child_env, rss_mb, sandbox_process, worker


def _child_peak_mb(argv: list[str], env: dict[str, str]) -> float:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss / 1024


def run(source: Path, quick: bool) -> list[Row]:
    sizes = (20, 100) if quick else (100, 500)
    rows = []
    with sandbox_process(source) as box, tempfile.TemporaryDirectory() as tmp:
        settings = Path(tmp) / "settings.toml"
        settings.write_text(box.settings_toml)
        env = child_env(
            source,
            SMTPDESK_CONFIG=str(settings),
            SMTPDESK_PASSWORD=box.password,
            XDG_DATA_HOME=tmp,
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        )
        peaks = {
            n: worker("memory", source, str(settings), box.password, str(n), env=env) for n in sizes
        }
        cli = _child_peak_mb([PYTHON, "-c", CLI, "test"], env)
    small, large = (peaks[n] for n in sizes)
    rows.append(Row("6 memory", "TUI after opening (peak)", small["open"], None, "MB", "≤ 150 MB"))
    rows.append(Row("6 memory", "TUI + a test send (peak)", small["test"], None, "MB", "≤ 150 MB"))
    rows.append(
        Row(
            "6 memory",
            f"TUI + batch of {sizes[1]} vs {sizes[0]} (peak)",
            large["batch"],
            small["batch"],
            "MB",
            "ratio ≈ 1.0",
            "the batch runs in the process that opened the TUI",
        )
    )
    rows.append(Row("6 memory", "CLI smtpdesk test (peak)", cli, None, "MB", "report"))
    return rows


async def _main(settings_file: str, password: str, count: int) -> dict[str, float]:
    from tui.app import make_app

    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(config_path=Path(tmp) / "unused.toml")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            result["open"] = rss_mb()[1]
            from transports.testsend import run_test
            from tui.store import SettingsStore

            settings = SettingsStore(Path(settings_file)).load()
            outcome = await run_test(settings, password, on_event=lambda event: None)
            if not outcome.ok:
                raise RuntimeError(f"the test send failed: {outcome.failure}")
            result["test"] = rss_mb()[1]
            # Imported only now: "after opening" and "after a test send" are what those
            # load, not the batch's modules (fpdf2, fontTools) imported ahead of them.
            from bench.batch_send import _library
            from tui.batch import send_batch
            from tui.emailing import document_job
            from tui.sendlog import SendLog

            library, docs = _library(count)
            jobs = [document_job(d, library, settings) for d in docs]
            with SendLog(Path(tmp) / "log.sqlite3") as log:
                await send_batch(settings, password, jobs, log=log)
            result["batch"] = rss_mb()[1]
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("settings")
    parser.add_argument("password")
    parser.add_argument("count", type=int)
    a = parser.parse_args()
    print(json.dumps(asyncio.run(_main(a.settings, a.password, a.count))))

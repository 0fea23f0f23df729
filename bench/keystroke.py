"""Benchmark 7: keystroke to repaint in the settings form: Pilot types 200
characters into the host field, against the same typing into a bare ``Input`` and
into the host field of a bare Textual app with the settings screen's widget tree (the
reference of benchmark 1: Textual's own cost of a key on a screen that size, e.g. its
re-layout after each Input change), in the same process, interleaved. Target: ≤ 5 ms
per key on top of Textual's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Row, median, worker
from bench.tui_start import BARE_APP

TEXT = ("smtp.mail.example.com-" * 10)[:200]


def run(source: Path, quick: bool) -> list[Row]:
    data = worker("keystroke", source, "2" if quick else "5")
    extra = data["smtpdesk_ms"] - data["bare_ms"]
    rows = [
        Row(
            "7 keystroke",
            "per key, 200 keys into the host field",
            data["smtpdesk_ms"],
            data["bare_ms"],
            "ms",
            "≤ +5 ms/key",
            f"{extra:+.2f} ms per key on top of a bare Input",
        )
    ]
    if "form_ms" in data:
        extra = data["smtpdesk_ms"] - data["form_ms"]
        rows.append(
            Row(
                "7 keystroke",
                "per key, vs the same widget tree",
                data["smtpdesk_ms"],
                data["form_ms"],
                "ms",
                "≤ +5 ms/key",
                f"{extra:+.2f} ms per key on top of a bare app with the same widgets",
            )
        )
    return rows


async def _type(app: object, selector: str) -> float:
    from textual.widgets import Input

    async with app.run_test(size=(80, 24)) as pilot:  # type: ignore[attr-defined]
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False  # as smtpdesk is measured (make_app(cursor_blink=False))
        await pilot.click(selector)
        await pilot.pause()
        start = time.perf_counter()
        await pilot.press(*TEXT)
        await pilot.pause()
        return (time.perf_counter() - start) / len(TEXT) * 1000


async def _main(rounds: int) -> dict[str, float]:
    from textual.app import App, ComposeResult
    from textual.widgets import Input

    from tui.app import make_app

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Input(id="smtp-host")

    # The bare app of benchmark 1 (same widget tree).
    namespace: dict[str, Any] = {}
    exec(BARE_APP, namespace)
    form_app = namespace["Bare"]

    ours: list[float] = []
    bare: list[float] = []
    form: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            bare.append(await _type(Bare(), "#smtp-host"))
            form.append(await _type(form_app(), "#smtp-host"))
            app = make_app(config_path=Path(tmp) / "settings.toml", cursor_blink=False)
            ours.append(await _type(app, "#smtp-host"))
    return {"smtpdesk_ms": median(ours), "bare_ms": median(bare), "form_ms": median(form)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("rounds", type=int)
    print(json.dumps(asyncio.run(_main(parser.parse_args().rounds))))

"""Benchmark 7: keystroke to repaint in the settings form: Pilot types 200
characters into the host field, against the same typing into a bare ``Input``
(in the same process, interleaved). Target: ≤ 5 ms per key on top of Textual's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench import Row, median, worker

TEXT = ("smtp.mail.example.com-" * 10)[:200]


def run(source: Path, quick: bool) -> list[Row]:
    data = worker("keystroke", source, "2" if quick else "5")
    extra = data["smtpdesk_ms"] - data["bare_ms"]
    return [
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


async def _type(app: object, selector: str) -> float:
    async with app.run_test(size=(80, 24)) as pilot:  # type: ignore[attr-defined]
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

    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            bare.append(await _type(Bare(), "#smtp-host"))
            app = make_app(config_path=Path(tmp) / "settings.toml", cursor_blink=False)
            ours.append(await _type(app, "#smtp-host"))
    return {"smtpdesk_ms": median(ours), "bare_ms": median(bare)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("rounds", type=int)
    print(json.dumps(asyncio.run(_main(parser.parse_args().rounds))))

"""Benchmark 5: N invoices rendered and emailed over one connection to the sandbox.

smtpdesk: ``tui.batch.send_batch`` with ``tui.emailing.document_job`` (PDF rendered
when each job's turn comes, every state change recorded in the send log).
References, with the same N messages rendered beforehand: a bare aiosmtplib
loop over one connection (the client-side limit), and one new connection per
message (what a naive tool does). Also smtpdesk with the send log's
``synchronous = FULL`` turned off, to show the fsync's share, and smtpdesk sending
the same messages built beforehand (``smtpdesk-built``: the send path alone, with its
send log, against the bare loop; what rendering costs is the rest). Messages per second;
the sandbox runs in a process of its own. Target: ≥ 0.8× the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Row, sandbox_process, worker

MODES = ("smtpdesk", "smtpdesk-nosync", "smtpdesk-built", "bare-one", "bare-each")


def run(source: Path, quick: bool) -> list[Row]:
    count = 100 if quick else 500
    rates: dict[str, float] = {}
    with sandbox_process(source) as box:
        args = [str(box.port), str(box.ca_file), box.username, box.password, str(count)]
        with tempfile.TemporaryDirectory() as tmp:
            settings = Path(tmp) / "settings.toml"
            settings.write_text(box.settings_toml)
            for mode in MODES:
                rates[mode] = worker("batch_send", source, mode, str(settings), *args)["rate"]
    note = (
        f"one new connection per message: {rates['bare-each']:.0f} msg/s, smtpdesk is "
        f"{rates['smtpdesk'] / rates['bare-each']:.1f}× that; send log without fsync: "
        f"{rates['smtpdesk-nosync']:.0f} msg/s; messages built beforehand (send path alone): "
        f"{rates['smtpdesk-built']:.0f} msg/s, {rates['smtpdesk-built'] / rates['bare-one']:.2f}× "
        "the bare loop"
    )
    return [
        Row(
            "5 batch",
            f"{count} invoices, one connection",
            rates["smtpdesk"],
            rates["bare-one"],
            "msg/s",
            "≥ 0.8×",
            note,
        )
    ]


def _library(count: int) -> tuple[Any, list[Any]]:
    import tui
    from tui.documents import Invoice, load_folder

    library = load_folder(Path(tui.__file__).parent / "samples")
    samples = [d for d in library.documents.values() if isinstance(d, Invoice)]
    docs = []
    for n in range(count):
        base = samples[n % len(samples)]
        doc = base.model_copy(update={"id": f"B-{n:04d}", "number": f"B-2026-{n:04d}"})
        library.documents[doc.id] = doc
        docs.append(doc)
    return library, docs


async def _bare(
    messages: list[Any], port: int, ca: str, user: str, password: str, each: bool
) -> None:
    import aiosmtplib

    context = ssl.create_default_context(cafile=ca)

    def client() -> Any:
        return aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=port,
            start_tls=True,
            tls_context=context,
            username=user,
            password=password,
            local_hostname="localhost",
        )

    if each:
        for out in messages:
            async with client() as smtp:
                await smtp.sendmail(out.sender, list(out.recipients), out.as_bytes())
        return
    async with client() as smtp:
        for out in messages:
            await smtp.sendmail(out.sender, list(out.recipients), out.as_bytes())


async def _smtpdesk(settings: Any, password: str, jobs: list[Any], sync: bool, tmp: Path) -> int:
    from tui.batch import send_batch
    from tui.sendlog import SendLog

    with SendLog(tmp / "sendlog.sqlite3") as log:
        if not sync:
            # Measurement only: the log's own setting is FULL (fsync per state change).
            log._db.execute("PRAGMA synchronous = OFF")
        report = await send_batch(settings, password, jobs, log=log)
    return len(report.sent)


def _worker(mode: str, settings_file: str, port: int, ca: str, user: str, pw: str, n: int) -> None:
    from tui.emailing import build_email, document_job, draft_email, render_attachment
    from tui.store import SettingsStore

    settings = SettingsStore(Path(settings_file)).load()
    library, docs = _library(n)
    fixed = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "smtpdesk-built":
            from tui.batch import BatchJob, allocate_message_id

            jobs = [
                BatchJob(
                    job_id=d.id,
                    message=build_email(
                        draft_email(d, library, settings),
                        settings,
                        render_attachment(d, library, settings, creation_date=fixed),
                        message_id=allocate_message_id(settings),
                    ),
                    document_id=d.id,
                )
                for d in docs
            ]
        elif mode.startswith("smtpdesk"):
            jobs = [document_job(d, library, settings, creation_date=fixed) for d in docs]
        if mode.startswith("smtpdesk"):
            start = time.perf_counter()
            sync = mode != "smtpdesk-nosync"
            sent = asyncio.run(_smtpdesk(settings, pw, jobs, sync, Path(tmp)))
            elapsed = time.perf_counter() - start
            if sent != n:
                raise RuntimeError(f"only {sent} of {n} sent")
        else:
            messages = [
                build_email(
                    draft_email(d, library, settings),
                    settings,
                    render_attachment(d, library, settings, creation_date=fixed),
                )
                for d in docs
            ]
            start = time.perf_counter()
            asyncio.run(_bare(messages, port, ca, user, pw, mode == "bare-each"))
            elapsed = time.perf_counter() - start
    print(json.dumps({"rate": n / elapsed, "seconds": elapsed}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("settings")
    parser.add_argument("port", type=int)
    parser.add_argument("ca")
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("count", type=int)
    a = parser.parse_args()
    _worker(a.mode, a.settings, a.port, a.ca, a.user, a.password, a.count)

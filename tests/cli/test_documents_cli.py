"""Documents and the send log from the command line, end to end against the sandbox.

The sandbox runs in the test's own event loop (so its fault hook can be set
here); the CLI runs as a subprocess (``smtpdesk`` from ``test_cli``).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import json
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.cli.test_cli import (
    PASSWORD,
    USER,
    Run,
    cli_env,
    sandbox_settings,
    smtpdesk,
    write_config,
)
from transports.message import build_message
from tui.documents import Library, ensure_documents_folder, load_folder
from tui.pdf import render_pdf
from tui.sandbox import Fault, Faults, Sandbox
from tui.sendlog import QueueItem, SendLog

EPOCH = "1764235800"
CREATED = dt.datetime.fromtimestamp(int(EPOCH), dt.UTC)
MUELLER = "rechnungen@mueller-gmbh.example.com"
ZOE = ("accounts@zoe-ltd.example.test", "zoe.harper@zoe-ltd.example.test")


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(tmp_path / "sandbox", accounts={USER: PASSWORD}) as running:
        yield running


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "docs"
    ensure_documents_folder(path)
    return path


def env(**extra: str) -> dict[str, str]:
    return cli_env(SMTPDESK_PASSWORD=PASSWORD, SOURCE_DATE_EPOCH=EPOCH, **extra)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def records(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.lines]


# -- documents list ------------------------------------------------------------------


async def test_list_reports_bad_files_and_lists_the_rest(folder: Path) -> None:
    (folder / "documents" / "BROKEN-1.json").write_text('{\n  "kind": "invoice",\n  "number":\n')
    wrong = json.loads((folder / "documents" / "INV-2026-0141.json").read_text())
    wrong["total"] = "1.00"
    (folder / "documents" / "WRONG-TOTAL.json").write_text(json.dumps(wrong, indent=2))

    run = await smtpdesk("--documents", str(folder), "documents", "list")
    assert run.code == 0, run.err
    assert run.lines[0].split()[:3] == ["ID", "TYPE", "CONTACT"]  # number = id: not repeated
    assert max(len(line) for line in run.lines[:-1]) <= 80, run.lines  # fits 80 columns
    listed = {line.split()[0] for line in run.lines[1:-1]}
    assert listed == {p.stem for p in (folder / "documents").glob("*.json")} - {
        "BROKEN-1",
        "WRONG-TOTAL",
    }
    assert len(listed) == 10
    inv = next(line for line in run.lines if line.startswith("INV-2026-0141 "))
    assert "Müller GmbH" in inv and "€4,997.74" in inv and inv.endswith("never")
    # At 80 columns long contact names give way (the Japanese one is cut, by display width).
    assert any("株式会社 山…" in line for line in run.lines)
    wide = await smtpdesk(
        "--documents", str(folder), "documents", "list", env=cli_env(COLUMNS="160")
    )
    assert any("株式会社 山田商事" in line for line in wide.lines)
    assert wide.lines[0].split()[:4] == ["ID", "TYPE", "CONTACT", "DATE"]
    errors = run.err.splitlines()
    assert any(
        f"{folder / 'documents' / 'BROKEN-1.json'}:4: is not valid JSON" in e for e in errors
    )
    assert any(
        f"{folder / 'documents' / 'WRONG-TOTAL.json'}:" in e and "does not match" in e
        for e in errors
    )

    as_json = await smtpdesk("--documents", str(folder), "documents", "list", "--json")
    assert as_json.code == 0
    (data,) = records(as_json)
    assert data["folder"] == str(folder)
    documents = {d["id"]: d for d in data["documents"]}
    assert len(documents) == 10
    assert documents["INV-2026-0142"]["emails"] == list(ZOE)
    assert documents["INV-2026-0141"] == {
        "id": "INV-2026-0141",
        "type": "invoice",
        "number": "INV-2026-0141",
        "title": "Invoice INV-2026-0141",
        "contact": {"id": "mueller", "name": "Müller GmbH"},
        "emails": [MUELLER],
        "date": "2026-11-02",
        "currency": "EUR",
        "total": "4997.74",
        "last_emailed": None,
    }
    assert (
        documents["RPT-2026-10"]["type"] == "report" and documents["RPT-2026-10"]["total"] is None
    )
    problems = {Path(str(p["file"])).name for p in data["problems"]}
    assert problems == {"BROKEN-1.json", "WRONG-TOTAL.json"}


async def test_default_folder_is_seeded_and_explicit_missing_folder_is_exit_2(
    isolated_environment: Path, tmp_path: Path
) -> None:
    run = await smtpdesk("documents", "list", "--json")
    assert run.code == 0, run.err
    (data,) = records(run)
    seeded = isolated_environment / ".local" / "share" / "smtpdesk" / "documents"
    assert data["folder"] == str(seeded)
    assert len(data["documents"]) == 10
    missing = await smtpdesk("--documents", str(tmp_path / "nowhere"), "documents", "list")
    assert missing.code == 2
    assert "does not exist" in missing.err and "--documents" in missing.err
    from_env = await smtpdesk(
        "documents", "list", env=cli_env(SMTPDESK_DOCUMENTS=str(tmp_path / "nowhere"))
    )
    assert from_env.code == 2 and "SMTPDESK_DOCUMENTS" in from_env.err


# -- documents render ----------------------------------------------------------------


async def test_render_is_byte_identical_to_render_pdf(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "invoice.pdf"
    out.parent.mkdir()
    run = await smtpdesk(
        "--documents",
        str(folder),
        "documents",
        "render",
        "INV-2026-0141",
        "--out",
        str(out),
        env=env(),
    )
    assert run.code == 0, run.err
    data = out.read_bytes()
    library = load_folder(folder)
    assert data == render_pdf(library.documents["INV-2026-0141"], library, creation_date=CREATED)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "INV-2026-0141" in text and "4,997.74" in text
    assert [p.name for p in out.parent.iterdir()] == ["invoice.pdf"]  # no temporary left

    again = tmp_path / "again.pdf"
    run = await smtpdesk(
        "--documents",
        str(folder),
        "documents",
        "render",
        "inv-2026-0141",
        "--out",
        str(again),
        env=env(),
    )
    assert run.code == 0 and again.read_bytes() == data  # same epoch, same bytes


async def test_render_errors_are_exit_2(folder: Path, tmp_path: Path) -> None:
    doc = json.loads((folder / "documents" / "Q-2026-0031.json").read_text())
    doc["notes"] = ["Symbol \U0010fffd nobody can print"]
    (folder / "documents" / "GLYPH.json").write_text(json.dumps(doc))
    out = tmp_path / "x.pdf"
    base = ["--documents", str(folder), "documents", "render"]
    unknown, glyph, no_folder, bad_epoch = (
        await smtpdesk(*base, "INV-2026-014", "--out", str(out)),
        await smtpdesk(*base, "GLYPH", "--out", str(out)),
        await smtpdesk(*base, "Q-2026-0031", "--out", str(tmp_path / "no" / "x.pdf")),
        await smtpdesk(
            *base, "Q-2026-0031", "--out", str(out), env=cli_env(SOURCE_DATE_EPOCH="soon")
        ),
    )
    assert unknown.code == 2
    assert "'INV-2026-014'" in unknown.err and "did you mean INV-2026-014" in unknown.err
    assert glyph.code == 2 and "U+10FFFD" in glyph.err and "GLYPH" in glyph.err
    assert no_folder.code == 2 and "does not exist" in no_folder.err
    assert bad_epoch.code == 2 and "SOURCE_DATE_EPOCH" in bad_epoch.err
    assert not out.exists()
    for run in (unknown, glyph, no_folder, bad_epoch):
        assert "Traceback" not in run.err and len(run.err.splitlines()) == 1, run.err


# -- send --document -----------------------------------------------------------------


async def test_send_documents_in_one_connection_then_log(
    mail: Sandbox, folder: Path, tmp_path: Path
) -> None:
    settings = sandbox_settings(
        mail, copy_to="archive@acme.test", reply_to="billing@acme.test", from_name="ACME Ltd"
    )
    config = write_config(tmp_path, settings)
    rendered = tmp_path / "rendered.pdf"
    render = await smtpdesk(
        "--documents",
        str(folder),
        "documents",
        "render",
        "INV-2026-0141",
        "--out",
        str(rendered),
        env=env(),
    )
    assert render.code == 0, render.err
    common = ["--config", str(config), "--documents", str(folder)]
    run = await smtpdesk(
        *common, "send", "--document", "INV-2026-0141", "--document", "INV-2026-0142", env=env()
    )
    assert run.code == 0, run.out + run.err
    assert run.lines[0] == "sending 2 documents over one connection"
    assert any(line.startswith("[1/2] INV-2026-0141: sent (250") for line in run.lines)
    assert any(line.startswith("[2/2] INV-2026-0142: sent (250") for line in run.lines)
    assert "2 sent, 1 connection" in run.lines[-1]

    assert len(mail.messages) == 2
    first, second = mail.messages
    assert set(first.recipients) == {MUELLER, "archive@acme.test"}
    assert set(second.recipients) == {*ZOE, "archive@acme.test"}
    message = parse(first.data)
    assert message["Subject"] == "Invoice INV-2026-0141 from Lumen Messtechnik GmbH"
    assert message["To"] == MUELLER
    assert message["Reply-To"] == "billing@acme.test"
    assert b"archive@acme.test" not in first.data  # the blind copy is never in a header
    (part,) = list(message.iter_attachments())
    assert part.get_filename() == "Invoice-INV-2026-0141.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_payload(decode=True) == rendered.read_bytes()
    body = message.get_body(("plain",))
    assert body is not None and "Amount due: €4,997.74" in body.get_content()
    assert parse(second.data)["To"] == ", ".join(ZOE)

    log = await smtpdesk("log", "--json")
    assert log.code == 0, log.err
    entries = records(log)
    assert [e["document_id"] for e in entries] == ["INV-2026-0142", "INV-2026-0141"]  # newest first
    assert {e["state"] for e in entries} == {"sent"}
    assert entries[1]["queue_id"] == first.queue_id
    assert entries[1]["message_id"] == message["Message-ID"]
    assert entries[1]["subject"] == message["Subject"]
    assert set(entries[1]["recipients"]) == {MUELLER, "archive@acme.test"}

    text = await smtpdesk("log", "--document", "INV-2026-0141")
    assert text.code == 0
    assert "sent     INV-2026-0141  Invoice INV-2026-0141 from Lumen Messtechnik GmbH" in text.out
    assert f"(queue id {first.queue_id})" in text.out
    assert f"message-id: {message['Message-ID']}" in text.out
    assert "INV-2026-0142" not in text.out

    listed = await smtpdesk("--documents", str(folder), "documents", "list", "--json")
    documents = {d["id"]: d for d in records(listed)[0]["documents"]}
    assert documents["INV-2026-0141"]["last_emailed"] is not None
    assert documents["Q-2026-0031"]["last_emailed"] is None


async def test_to_subject_and_body_override_the_templates(
    mail: Sandbox, folder: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk(
        "--config", str(config), "--documents", str(folder),
        "send", "--document", "Q-2026-0031", "--to", "buyer@zoe.test", "--cc", "cc@zoe.test",
        "--subject", "Your quote", "--body", "Here it is.", "--json",
        env=env(),
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    result = records(run)[-1]
    assert result["type"] == "result" and result["ok"] is True and result["connections"] == 1
    (captured,) = mail.messages
    assert set(captured.recipients) == {"buyer@zoe.test", "cc@zoe.test"}
    message = parse(captured.data)
    assert message["Subject"] == "Your quote" and message["Cc"] == "cc@zoe.test"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Here it is."
    assert [a.get_filename() for a in message.iter_attachments()] == ["Quote-Q-2026-0031.pdf"]


async def test_a_550_for_one_document_is_reported_and_exit_1(
    mail: Sandbox, folder: Path, tmp_path: Path
) -> None:
    mail.faults = Faults(Fault("rcpt", "550 5.1.1 Mailbox does not exist", MUELLER))
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk(
        "--config", str(config), "--documents", str(folder),
        "send", "--document", "INV-2026-0141", "--document", "INV-2026-0142",
        env=env(),
    )  # fmt: skip
    assert run.code == 1, run.out + run.err
    assert any(line.startswith("[1/2] INV-2026-0141: FAILED") for line in run.lines)
    failed = run.lines.index("INV-2026-0141  FAILED")
    assert "550" in "\n".join(run.lines[failed : failed + 4])
    assert any("What to try:" in line for line in run.lines[failed:])
    assert any(line.startswith("INV-2026-0142  sent to") for line in run.lines)
    assert "1 failed, 1 sent" in run.lines[-1] or "1 sent, 1 failed" in run.lines[-1]
    assert len(mail.messages) == 1 and set(mail.messages[0].recipients) == set(ZOE)

    failed_log = records(await smtpdesk("log", "--json", "--state", "failed"))
    assert [e["document_id"] for e in failed_log] == ["INV-2026-0141"]
    assert "550" in str(failed_log[0]["reply"]) + str(failed_log[0]["failure"])


async def test_plain_send_is_logged_too(mail: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    run = await smtpdesk(
        "--config", str(config), "send", "--to", "a@example.test", "--subject", "Hello",
        env=env(),
    )  # fmt: skip
    assert run.code == 0, run.err
    (entry,) = records(await smtpdesk("log", "--json", "--limit", "5"))
    assert entry["document_id"] is None and entry["state"] == "sent"
    assert entry["subject"] == "Hello" and entry["queue_id"] == mail.messages[0].queue_id


async def test_busy_send_log_is_exit_2(mail: Sandbox, folder: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    with SendLog() as log, log.sending_lock():
        run = await smtpdesk(
            "--config", str(config), "--documents", str(folder),
            "send", "--document", "INV-2026-0141",
            env=env(),
        )  # fmt: skip
    assert run.code == 2, run.out + run.err
    assert run.err.startswith("smtpdesk: ") and "Traceback" not in run.err
    assert mail.messages == []


async def test_resume_sends_what_was_left_queued(mail: Sandbox, tmp_path: Path) -> None:
    settings = sandbox_settings(mail)
    config = write_config(tmp_path, settings)
    nothing = await smtpdesk("--config", str(config), "send", "--resume", env=env())
    assert nothing.code == 0 and "nothing to resume" in nothing.out
    outgoing = [
        build_message(settings, to=[f"r{n}@example.test"], subject=f"Message {n}", body="hi")
        for n in (1, 2)
    ]
    with SendLog() as log:
        log.queue(
            "20261127T100000Z-abcdef",
            [
                QueueItem(
                    job_id=f"job{n}",
                    message_id=out.message_id,
                    recipients=out.recipients,
                    subject=f"Message {n}",
                    sender=out.sender,
                    message=out.as_bytes(),
                )
                for n, out in enumerate(outgoing, 1)
            ],
        )
    unknown = await smtpdesk("--config", str(config), "send", "--resume", "nope", env=env())
    assert unknown.code == 2 and "20261127T100000Z-abcdef" in unknown.err
    run = await smtpdesk("--config", str(config), "send", "--resume", env=env())
    assert run.code == 0, run.out + run.err
    assert run.lines[0] == "resuming batch 20261127T100000Z-abcdef"
    assert [m.recipients for m in mail.messages] == [("r1@example.test",), ("r2@example.test",)]
    assert [parse(m.data)["Message-ID"] for m in mail.messages] == [o.message_id for o in outgoing]
    again = await smtpdesk(
        "--config", str(config), "send", "--resume", "20261127T100000Z-abcdef", env=env()
    )
    assert again.code == 0 and "is finished: nothing to resume" in again.out
    assert len(mail.messages) == 2


async def test_send_document_errors_before_connecting(
    mail: Sandbox, folder: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sandbox_settings(mail))
    common = ["--config", str(config), "--documents", str(folder), "send"]
    runs = [
        await smtpdesk(*common, "--document", "INV-2026-9999", env=env()),
        await smtpdesk(*common, "--document", "Q-2026-0031", "--document", "Q-2026-0031"),
        await smtpdesk(*common, "--document", "Q-2026-0031", "--to", "x@y.test\r\nBcc: v@e.test"),
        await smtpdesk(*common, "--resume", "--to", "a@b.test"),
        await smtpdesk(*common),
    ]
    for run in runs:
        assert run.code == 2, run.out + run.err
        assert "Traceback" not in run.err
    assert "did you mean" in runs[0].err
    assert runs[4].err.startswith("smtpdesk: --to:")
    assert mail.messages == []
    assert records(await smtpdesk("log", "--json")) == []


async def test_demo_documents_send_and_log(isolated_environment: Path) -> None:
    listed = await smtpdesk("--demo", "documents", "list")
    assert listed.code == 0 and any(line.startswith("INV-2026-0141 ") for line in listed.lines)
    sent = await smtpdesk("--demo", "send", "--document", "INV-2026-0141")
    assert sent.code == 0, sent.out + sent.err
    assert any(line.startswith("demo: the sandbox captured") for line in sent.lines)
    assert any(line.startswith("INV-2026-0141  sent to") for line in sent.lines)
    assert not (isolated_environment / ".local" / "share" / "smtpdesk").exists()


def test_the_samples_folder_is_intact(folder: Path) -> None:
    """The tests above rely on the sample set; a changed sample should fail loudly here."""
    library: Library = load_folder(folder)
    assert library.problems == []
    assert library.recipients(library.documents["INV-2026-0141"]) == [MUELLER]
    assert tuple(library.recipients(library.documents["INV-2026-0142"])) == ZOE

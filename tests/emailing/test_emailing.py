"""tui.emailing: templates per type, To defaults, subjects, the built message, header safety."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import inspect
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from transports.message import MessageError, Outgoing
from transports.settings import Settings
from tui.documents import Business, Contact, Library, ensure_documents_folder, load_folder
from tui.emailing import (
    TEMPLATES,
    build_email,
    creation_date_from_env,
    default_recipients,
    document_job,
    draft_email,
    one_line,
    render_attachment,
)
from tui.pdf import pdf_filename, render_pdf

FIXED = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)


def make_settings(**top: object) -> Settings:
    data: dict[str, object] = {
        "smtp": {"host": "smtp.acme.test", "port": 587, "username": "billing@acme.test"},
        **top,
    }
    return Settings.model_validate(data)


@pytest.fixture
def library(tmp_path: Path) -> Library:
    folder = tmp_path / "documents"
    ensure_documents_folder(folder)
    loaded = load_folder(folder)
    assert loaded.problems == []
    return loaded


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_every_document_type_has_a_template() -> None:
    assert set(TEMPLATES) == {"invoice", "quote", "purchase_order", "statement", "report"}


@pytest.mark.parametrize(
    ("doc_id", "subject", "in_body"),
    [
        (
            "INV-2026-0141",
            "Invoice INV-2026-0141 from Lumen Messtechnik GmbH",
            [
                "Hello Jürgen Weiß,",
                "invoice INV-2026-0141 of 2 November 2026 (your reference: Order 4500187342)",
                "Amount due: €4,997.74",
                "Due date: 2 December 2026",
                "Payment terms: 30 days net.",
            ],
        ),
        (
            "Q-2026-0031",
            "Quote Q-2026-0031 from Lumen Messtechnik GmbH",
            ["our quote Q-2026-0031 of", "Valid until: "],
        ),
        (
            "PO-2026-0077",
            "Purchase order PO-2026-0077 from Lumen Messtechnik GmbH",
            ["our purchase order PO-2026-0077", "Order total: ", "Please confirm the order"],
        ),
        (
            "ST-2026-11-MUELLER",
            "Statement ST-2026-11-MUELLER from Lumen Messtechnik GmbH",
            ["statement of account ST-2026-11-MUELLER for ", "Balance: €"],
        ),
        (
            "RPT-2026-10",
            "Revenue by customer, October 2026 (RPT-2026-10) from Lumen Messtechnik GmbH",
            ["the report Revenue by customer, October 2026 (RPT-2026-10)", "All amounts in EUR"],
        ),
    ],
)
def test_templates_per_type(
    library: Library, doc_id: str, subject: str, in_body: list[str]
) -> None:
    doc = library.documents[doc_id]
    draft = draft_email(doc, library, make_settings())
    assert draft.subject == subject
    for text in in_body:
        assert text in draft.body, (text, draft.body)
    assert draft.body.endswith("Kind regards,\nLumen Messtechnik GmbH\n")
    assert "\n\n\n" not in draft.body
    assert "{" not in draft.body and "}" not in draft.body
    assert draft.attachment_name == pdf_filename(doc)
    assert draft.cc == ()


def test_to_defaults_to_the_contact_addresses(library: Library) -> None:
    settings = make_settings()
    zoe = library.documents["INV-2026-0142"]
    assert draft_email(zoe, library, settings).to == (
        "accounts@zoe-ltd.example.test",
        "zoe.harper@zoe-ltd.example.test",
    )
    report = library.documents["RPT-2026-10"]
    assert list(draft_email(report, library, settings).to) == default_recipients(report, library)
    assert draft_email(report, library, settings).to  # the report's recipient contacts
    chosen = draft_email(zoe, library, settings, to=["boss@zoe.test"], cc=["cc@zoe.test"])
    assert chosen.to == ("boss@zoe.test",) and chosen.cc == ("cc@zoe.test",)
    custom = draft_email(zoe, library, settings, subject="Your invoice", body="See attached.")
    assert custom.subject == "Your invoice" and custom.body == "See attached."


def test_subject_sender_falls_back_to_from_name_then_nothing(library: Library) -> None:
    doc = library.documents["INV-2026-0141"]
    nameless = Library(
        library.folder, library.documents, library.contacts, Business(), library.problems
    )
    with_name = draft_email(doc, nameless, make_settings(from_name="ACME Ltd"))
    assert with_name.subject == "Invoice INV-2026-0141 from ACME Ltd"
    assert with_name.body.endswith("Kind regards,\nACME Ltd\n")
    bare = draft_email(doc, nameless, make_settings())
    assert bare.subject == "Invoice INV-2026-0141"
    assert bare.body.endswith("Kind regards,\nbilling@acme.test\n")


def test_built_message_has_the_pdf_reply_to_and_blind_copy(library: Library) -> None:
    settings = make_settings(reply_to="accounts@acme.test", copy_to="archive@acme.test")
    doc = library.documents["INV-2026-0141"]
    draft = draft_email(doc, library, settings, cc=["boss@mueller.example.test"])
    attachment = render_attachment(doc, library, settings, creation_date=FIXED)
    assert attachment.data == render_pdf(doc, library, creation_date=FIXED)
    outgoing = build_email(draft, settings, attachment, message_id="<fixed@acme.test>")
    assert outgoing.message_id == "<fixed@acme.test>"
    assert outgoing.recipients == (
        "rechnungen@mueller-gmbh.example.com",
        "boss@mueller.example.test",
        "archive@acme.test",
    )
    data = outgoing.as_bytes()
    assert b"archive@acme.test" not in data  # the blind copy is envelope-only
    message = parse(data)
    assert message["Subject"] == "Invoice INV-2026-0141 from Lumen Messtechnik GmbH"
    assert message["Reply-To"] == "accounts@acme.test"
    assert message["To"] == "rechnungen@mueller-gmbh.example.com"
    (part,) = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_filename() == "Invoice-INV-2026-0141.pdf"
    assert part.get_payload(decode=True) == attachment.data
    body = message.get_body(("plain",))
    assert body is not None and "Amount due: €4,997.74" in body.get_content()


def test_cr_lf_in_names_never_reaches_a_header(library: Library) -> None:
    """Models reject CR/LF; even a model built around validation cannot inject a header."""
    doc = library.documents["INV-2026-0141"]
    evil = "Evil Corp\r\nBcc: victim@evil.test"
    contacts = dict(library.contacts)
    contacts["mueller"] = Contact.model_construct(
        **{
            **library.contacts["mueller"].model_dump(),
            "name": evil,
            "contact_person": "Jürgen\nBcc: victim@evil.test",
        }
    )
    business = Business.model_construct(name="ACME\u2028Ltd\r\nX-Injected: yes")
    tainted = Library(library.folder, library.documents, contacts, business, [])
    settings = make_settings()
    draft = draft_email(doc, tainted, settings)
    assert draft.subject == "Invoice INV-2026-0141 from ACME Ltd X-Injected: yes"
    assert "Hello Jürgen Bcc: victim@evil.test," in draft.body
    attachment = render_attachment(doc, library, settings, creation_date=FIXED)
    data = build_email(draft, settings, attachment).as_bytes()
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX-Injected:" not in head
    message = parse(data)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert "victim@evil.test" not in message["To"]
    # What the user types is not cleaned but refused, naming the field.
    typed = draft_email(doc, library, settings, subject="Hi\r\nBcc: victim@evil.test")
    with pytest.raises(MessageError, match="^subject"):
        build_email(typed, settings, attachment)
    bad_to = draft_email(doc, library, settings, to=["a@x.test\r\nBcc: victim@evil.test"])
    with pytest.raises(MessageError, match="^to"):
        build_email(bad_to, settings, attachment)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb", "a b"),
        ("a\nb", "a b"),
        ("a\x85b", "a b"),
        ("a\u2028b\u2029c", "a b c"),
        ("  tabs\tand\x00nul  ", "tabs and nul"),
        ("株式会社 山田商事", "株式会社 山田商事"),
    ],
)
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected


def test_creation_date_from_env() -> None:
    assert creation_date_from_env({}) is None
    assert creation_date_from_env({"SOURCE_DATE_EPOCH": ""}) is None
    assert creation_date_from_env({"SOURCE_DATE_EPOCH": "1764235800"}) == dt.datetime(
        2025, 11, 27, 9, 30, tzinfo=dt.UTC
    )
    for bad in ("-1", "1.5", "soon", "99999999999999999999"):
        with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
            creation_date_from_env({"SOURCE_DATE_EPOCH": bad})


async def test_document_job_builds_for_the_given_message_id(library: Library) -> None:
    settings = make_settings()
    doc = library.documents["INV-2026-0142"]
    job = document_job(doc, library, settings, creation_date=FIXED)
    assert job.job_id == job.document_id == "INV-2026-0142"
    assert job.subject == "Invoice INV-2026-0142 from Lumen Messtechnik GmbH"
    assert tuple(job.recipients) == draft_email(doc, library, settings).to
    assert callable(job.message)
    built = job.message("<given@acme.test>")
    assert inspect.isawaitable(built)  # rendered in a thread when the job's turn comes
    outgoing = await built
    assert outgoing.message_id == "<given@acme.test>"
    message = parse(outgoing.as_bytes())
    assert message["Message-ID"] == "<given@acme.test>"
    (part,) = list(message.iter_attachments())
    assert part.get_payload(decode=True) == render_pdf(doc, library, creation_date=FIXED)


async def test_document_job_renders_and_encodes_off_the_event_loop(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PDF, the MIME message and its wire bytes (base64) are all made in a worker
    thread: the event loop (the TUI's) only sends."""
    import threading

    import tui.emailing as emailing

    where: list[int] = []
    original = emailing.build_email

    def spying(*args: Any, **kwargs: Any) -> Outgoing:
        where.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(emailing, "build_email", spying)
    doc = library.documents["INV-2026-0142"]
    job = document_job(doc, library, make_settings(), creation_date=FIXED)
    assert callable(job.message)
    built = job.message("<given@acme.test>")
    assert inspect.isawaitable(built)
    outgoing = await built
    assert where and where[0] != threading.get_ident()
    assert outgoing._bytes  # encoded already, in the thread
    assert parse(outgoing.as_bytes())["Message-ID"] == "<given@acme.test>"

"""Emailing a document: per-type subject and body templates, and the message itself.

One place decides what an emailed document looks like, so the CLI
(``smtpdesk send --document``) and the TUI's Email dialog send the same thing:

- **To** defaults to the document's contact addresses (for a report: every
  recipient contact's addresses), **Cc** to nothing;
- **Subject** from the per-type template, e.g. ``Invoice INV-0042 from ACME Ltd``
  (the sender name is the business profile's name, else the settings'
  ``from_name``; without either the subject is just ``Invoice INV-0042``);
- **body** from the per-type template, in plain, language-neutral English;
- the PDF (``tui.pdf.render_pdf``) attached as ``pdf_filename(doc)``;
- the settings' reply-to and blind copy applied by ``build_message``.

Typical use (the dialog edits a draft, then builds the message)::

    draft = draft_email(doc, library, settings)          # pre-fill the form
    attachment = render_attachment(doc, library, settings)  # CPU-bound: a thread
    outgoing = build_email(draft, settings, attachment)  # MessageError names the field

or, for a batch whose PDFs are rendered when each job's turn comes (in a
thread, so the event loop keeps serving), ``document_job(doc, library,
settings)`` gives a ``tui.batch.BatchJob``.

Header safety: every value substituted into a template is first made one line
(control characters, including CR, LF, NEL and the Unicode line and paragraph
separators, become spaces), so a contact or business name that somehow holds
a line break can never start a new header. Values the user types (To, Cc,
Subject) are *not* cleaned: ``build_message`` rejects a CR or LF there with a
``MessageError`` naming the field.

Reproducible PDFs: ``creation_date_from_env`` honours ``SOURCE_DATE_EPOCH``
(https://reproducible-builds.org/specs/source-date-epoch/), so two renders of
the same document give the same bytes.

This is a service module: no Textual import (DESIGN.md section 8).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from transports.message import Attachment, Outgoing, build_message
from transports.settings import Settings
from tui.batch import BatchJob
from tui.documents import (
    AnyDocument,
    DocumentKind,
    Invoice,
    Library,
    PurchaseOrder,
    Quote,
    Report,
    Statement,
    format_money,
)
from tui.pdf import format_date, pdf_filename, render_pdf

CREATION_DATE_ENV = "SOURCE_DATE_EPOCH"
"""Seconds since the epoch (UTC) used as the PDF creation date when set."""

PDF_CONTENT_TYPE = "application/pdf"


@dataclass(frozen=True)
class Template:
    """A subject and a body with ``{field}`` placeholders (see ``template_fields``)."""

    subject: str
    body: str


_SIGN_OFF = "If you have any questions, just reply to this email.\n\nKind regards,\n{signature}\n"

TEMPLATES: Mapping[DocumentKind, Template] = {
    "invoice": Template(
        subject="Invoice {number}{from_sender}",
        body=(
            "{greeting}\n\n"
            "Please find attached invoice {number} of {issue_date}{reference_note}.\n\n"
            "Amount due: {total}\n"
            "Due date: {due_date}\n"
            "{payment_terms_line}\n" + _SIGN_OFF
        ),
    ),
    "quote": Template(
        subject="Quote {number}{from_sender}",
        body=(
            "{greeting}\n\n"
            "Please find attached our quote {number} of {issue_date}{reference_note}.\n\n"
            "Total: {total}\n"
            "Valid until: {valid_until}\n\n" + _SIGN_OFF
        ),
    ),
    "purchase_order": Template(
        subject="Purchase order {number}{from_sender}",
        body=(
            "{greeting}\n\n"
            "Please find attached our purchase order {number} of {issue_date}"
            "{reference_note}.\n\n"
            "Order total: {total}\n"
            "{delivery_line}\n"
            "Please confirm the order and the delivery date by reply.\n\n" + _SIGN_OFF
        ),
    ),
    "statement": Template(
        subject="Statement {number}{from_sender}",
        body=(
            "{greeting}\n\n"
            "Please find attached your statement of account {number} "
            "for {period_start} to {period_end}.\n\n"
            "Balance: {total}\n\n" + _SIGN_OFF
        ),
    ),
    "report": Template(
        subject="{title} ({number}){from_sender}",
        body=(
            "{greeting}\n\n"
            "Please find attached the report {title} ({number}) of {issue_date}.\n"
            "{subtitle_line}\n" + _SIGN_OFF
        ),
    ),
}
"""The subject and body template of each document type."""

_LINE_BREAKING = {"Zl", "Zp", "Cc"}


def one_line(value: str) -> str:
    """The text as one line: control characters and line separators become spaces.

    Used on every value that goes into a template, so a stray CR/LF in a name
    can never reach a header. Runs of whitespace collapse; ends are trimmed.
    """
    cleaned = "".join(
        " " if unicodedata.category(char) in _LINE_BREAKING else char for char in value
    )
    return re.sub(r"\s+", " ", cleaned).strip()


def sender_name(library: Library, settings: Settings) -> str:
    """Who the documents come from: the business profile's name, else ``from_name``."""
    return one_line(library.business.name or settings.from_name)


def default_recipients(doc: AnyDocument, library: Library) -> list[str]:
    """The document's contact addresses (every recipient's, for a report), no duplicates."""
    return library.recipients(doc)


def _greeting(doc: AnyDocument, library: Library) -> str:
    ids = doc.recipients if isinstance(doc, Report) else [doc.contact_id]
    contacts = [library.contacts[i] for i in ids if i in library.contacts]
    if len(contacts) != 1:
        return "Hello,"
    contact = contacts[0]
    name = one_line(contact.contact_person or contact.name)
    return f"Hello {name}," if name else "Hello,"


def template_fields(doc: AnyDocument, library: Library, settings: Settings) -> dict[str, str]:
    """The values the templates may use, each already one line.

    ``number``, ``title``, ``sender``, ``from_sender`` (`` from <sender>`` or
    empty), ``signature``, ``greeting``, ``contact``, ``issue_date``, ``total``,
    ``reference_note``, ``due_date``, ``payment_terms_line``, ``valid_until``,
    ``delivery_line``, ``period_start``, ``period_end``, ``subtitle_line``.
    """
    sender = sender_name(library, settings)
    contact = library.contacts.get(doc.contact_id)
    total = doc.total
    fields = {
        "number": one_line(doc.number),
        "title": one_line(doc.title),
        "sender": sender,
        "from_sender": f" from {sender}" if sender else "",
        "signature": sender or one_line(settings.sender),
        "greeting": _greeting(doc, library),
        "contact": one_line(contact.name) if contact else "",
        "issue_date": format_date(doc.issue_date),
        "total": format_money(total, doc.currency) if total is not None else "",
        "reference_note": f" (your reference: {one_line(doc.reference)})" if doc.reference else "",
        "due_date": "",
        "payment_terms_line": "",
        "valid_until": "",
        "delivery_line": "",
        "period_start": "",
        "period_end": "",
        "subtitle_line": "",
    }
    if isinstance(doc, Invoice):
        fields["due_date"] = format_date(doc.due_date)
        if doc.payment_terms:
            fields["payment_terms_line"] = f"Payment terms: {one_line(doc.payment_terms)}\n"
    elif isinstance(doc, Quote):
        fields["valid_until"] = format_date(doc.valid_until)
    elif isinstance(doc, PurchaseOrder):
        if doc.delivery_date is not None:
            fields["delivery_line"] = f"Requested delivery: {format_date(doc.delivery_date)}\n"
    elif isinstance(doc, Statement):
        fields["period_start"] = format_date(doc.period_start)
        fields["period_end"] = format_date(doc.period_end)
    elif isinstance(doc, Report) and doc.subtitle:
        fields["subtitle_line"] = f"{one_line(doc.subtitle)}\n"
    return fields


def _fill(template: str, fields: Mapping[str, str]) -> str:
    text = template.format_map(fields)
    # An empty optional line leaves a blank one; never more than one blank line.
    return re.sub(r"\n{3,}", "\n\n", text)


def default_subject(doc: AnyDocument, library: Library, settings: Settings) -> str:
    """``Invoice INV-0042 from ACME Ltd`` (the type's subject template)."""
    return one_line(_fill(TEMPLATES[doc.kind].subject, template_fields(doc, library, settings)))


def default_body(doc: AnyDocument, library: Library, settings: Settings) -> str:
    """The type's body template filled in (plain text, ends with one newline)."""
    return _fill(TEMPLATES[doc.kind].body, template_fields(doc, library, settings))


@dataclass(frozen=True)
class EmailDraft:
    """What the Email dialog shows and the user may edit before sending."""

    document_id: str
    to: tuple[str, ...]
    subject: str
    body: str
    attachment_name: str
    cc: tuple[str, ...] = field(default=())


def draft_email(
    doc: AnyDocument,
    library: Library,
    settings: Settings,
    *,
    to: Sequence[str] | None = None,
    cc: Sequence[str] = (),
    subject: str | None = None,
    body: str | None = None,
) -> EmailDraft:
    """The pre-filled email for a document; given values replace the defaults.

    Args:
        doc: The document (from ``library.documents``).
        library: The loaded documents folder.
        settings: The saved settings (sender name fallback).
        to: Recipients instead of the contact's addresses (``None``: the defaults).
        cc: Copy recipients.
        subject: Instead of the template's subject (``None``: the template).
        body: Instead of the template's body (``None``: the template).
    """
    return EmailDraft(
        document_id=doc.id,
        to=tuple(default_recipients(doc, library) if to is None else to),
        cc=tuple(cc),
        subject=default_subject(doc, library, settings) if subject is None else subject,
        body=default_body(doc, library, settings) if body is None else body,
        attachment_name=pdf_filename(doc),
    )


def creation_date_from_env(environ: Mapping[str, str] | None = None) -> dt.datetime | None:
    """The PDF creation date from ``SOURCE_DATE_EPOCH``, or None when it is not set.

    Raises:
        ValueError: The variable is set but is not a non-negative whole number.
    """
    value = (os.environ if environ is None else environ).get(CREATION_DATE_ENV, "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValueError(
            f"{CREATION_DATE_ENV}: {value!r} is not a number of seconds since 1970-01-01 UTC"
        )
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{CREATION_DATE_ENV}: {value} is out of range") from None


def render_attachment(
    doc: AnyDocument,
    library: Library,
    settings: Settings,
    *,
    creation_date: dt.datetime | None = None,
) -> Attachment:
    """The document's PDF as an attachment (synchronous and CPU-bound: use a thread in a UI).

    Args:
        doc: The document.
        library: The loaded documents folder.
        settings: For ``[documents] fallback_font``.
        creation_date: Fixed PDF creation date (see ``creation_date_from_env``).

    Raises:
        tui.pdf.MissingGlyphsError: A character no font can show.
        ValueError: The configured fallback font cannot be used.
    """
    data = render_pdf(
        doc,
        library,
        fallback_font=settings.documents.fallback_font,
        creation_date=creation_date,
    )
    return Attachment(filename=pdf_filename(doc), data=data, content_type=PDF_CONTENT_TYPE)


def build_email(
    draft: EmailDraft,
    settings: Settings,
    attachment: Attachment,
    *,
    extra_attachments: Sequence[Attachment] = (),
    message_id: str | None = None,
) -> Outgoing:
    """The message for a draft, with the PDF attached; reply-to and copy-to applied.

    Raises:
        transports.message.MessageError: An invalid address, a CR/LF in the
            subject, or no recipient; the text names the field.
    """
    return build_message(
        settings,
        to=draft.to,
        cc=draft.cc,
        subject=draft.subject,
        body=draft.body,
        attachments=[attachment, *extra_attachments],
        message_id=message_id,
    )


def document_job(
    doc: AnyDocument,
    library: Library,
    settings: Settings,
    draft: EmailDraft | None = None,
    *,
    creation_date: dt.datetime | None = None,
) -> BatchJob:
    """A batch job for the document; its PDF is rendered in a thread when its turn comes.

    The job id is the document id. A rendering or building error fails this
    job only (the batch engine records it as "The message could not be built").
    """
    ready = draft or draft_email(doc, library, settings)

    def render_and_build(message_id: str) -> Outgoing:
        attachment = render_attachment(doc, library, settings, creation_date=creation_date)
        outgoing = build_email(ready, settings, attachment, message_id=message_id)
        outgoing.as_bytes()  # encoded (base64, MIME) here, not in the event loop
        return outgoing

    async def build(message_id: str) -> Outgoing:
        return await asyncio.to_thread(render_and_build, message_id)

    return BatchJob(
        job_id=doc.id,
        message=build,
        document_id=doc.id,
        recipients=(*ready.to, *ready.cc),
        subject=ready.subject,
    )


__all__ = [
    "CREATION_DATE_ENV",
    "PDF_CONTENT_TYPE",
    "TEMPLATES",
    "EmailDraft",
    "Template",
    "build_email",
    "creation_date_from_env",
    "default_body",
    "default_recipients",
    "default_subject",
    "document_job",
    "draft_email",
    "one_line",
    "render_attachment",
    "sender_name",
    "template_fields",
]

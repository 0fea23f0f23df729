"""Building messages with the standard library's ``email`` package.

``build_message`` makes a complete RFC 5322 message (From with display name,
To, Cc, Reply-To, Date, Message-ID, text body, attachments with their MIME
types) and the envelope that goes with it. The copy-to address goes only into
the envelope: it never appears in a header the customer sees.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, localtime, make_msgid

import idna

from transports.addresses import check_header_text, normalize_address, shorten
from transports.settings import Settings


class MessageError(ValueError):
    """A message that cannot be built; the text names the field."""


@dataclass(frozen=True)
class Attachment:
    """A file to attach."""

    filename: str
    data: bytes
    content_type: str = ""
    """``maintype/subtype``; guessed from the file name when empty."""

    @property
    def mime_type(self) -> tuple[str, str]:
        kind = self.content_type or mimetypes.guess_type(self.filename)[0]
        kind = kind or "application/octet-stream"
        main, _, sub = kind.partition("/")
        return main, sub


@dataclass(frozen=True)
class Outgoing:
    """A message and its envelope, ready for any transport."""

    message: EmailMessage
    sender: str
    """Envelope sender (MAIL FROM)."""
    recipients: tuple[str, ...]
    """Envelope recipients: To, Cc and the blind copy, each once."""
    message_id: str
    smtputf8: bool = False
    """True when an address has a non-ASCII local part (needs the SMTPUTF8 extension)."""
    _bytes: list[bytes] = field(default_factory=list, repr=False, compare=False)

    def as_bytes(self) -> bytes:
        """The message as sent on the wire (CRLF line endings), built once."""
        if not self._bytes:
            policy = SMTP.clone(utf8=True) if self.smtputf8 else SMTP
            self._bytes.append(self.message.as_bytes(policy=policy))
        return self._bytes[0]


_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")
"""RFC 5322 field name: printable ASCII except the colon (no space, CR or LF)."""
_RESERVED_HEADERS = frozenset(
    {"from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id"}
    | {"mime-version", "return-path", "content-type", "content-transfer-encoding"}
    | {"content-disposition"}
)
"""Headers ``build_message`` writes itself: an extra header must not add or replace them
(an extra ``Bcc`` would show the blind copy to every recipient)."""


def check_header_name(name: str) -> str:
    """An extra header's field name: RFC 5322 ``ftext`` and not one the builder writes."""
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(
            "is not a valid header name (printable ASCII letters, digits and "
            "punctuation without a colon, space or line break)"
        )
    if name.lower() in _RESERVED_HEADERS or name.lower().startswith("content-"):
        raise ValueError("is written by smtpdesk itself and cannot be given as an extra header")
    return name


def _addresses(field_name: str, values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for value in values:
        try:
            result.append(_wire_address(normalize_address(value)))
        except ValueError as exc:
            raise MessageError(f"{field_name}: {exc}") from None
    return result


def _ascii_domain(domain: str) -> str:
    """The domain in IDNA 2008 (UTS 46) ASCII form.

    Not Python's ``"idna"`` codec: that is IDNA 2003, which maps ``ß`` to ``ss``
    and would send mail for ``straße.example`` to ``strasse.example``.
    """
    if domain.isascii():
        return domain
    return idna.encode(domain, uts46=True).decode("ascii")


def new_message_id(sender: str) -> str:
    """A fresh Message-ID on the sender's domain (IDNA 2008 ASCII form)."""
    return make_msgid(domain=_ascii_domain(sender.rpartition("@")[2] or "localhost"))


def _wire_address(address: str) -> str:
    """The address with its domain in IDNA (ASCII) form, as SMTP servers expect."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    return f"{local}@{_ascii_domain(domain)}"


def _address_header(address: str, name: str = "") -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def build_message(
    settings: Settings,
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
    message_id: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> Outgoing:
    """Build a message from the settings' sender, reply-to and copy-to.

    Raises ``MessageError`` naming the field for any invalid value, including a
    CR or LF anywhere in an address, name or subject.
    """
    if not to:
        raise MessageError("to: at least one recipient is required")
    to_list = _addresses("to", to)
    cc_list = _addresses("cc", cc)
    try:
        check_header_text(subject)
    except ValueError as exc:
        raise MessageError(f"subject: {exc}") from None
    if "\x00" in body:
        raise MessageError("body: must not contain a NUL character")
    sender = settings.sender
    if not sender:
        raise MessageError("from: no sender address is configured")
    sender = _addresses("from", [sender])[0]

    message = EmailMessage()
    message["From"] = _address_header(sender, settings.from_name)
    message["To"] = [_address_header(a) for a in to_list]
    if cc_list:
        message["Cc"] = [_address_header(a) for a in cc_list]
    reply_to = _addresses("reply_to", [settings.reply_to])[0] if settings.reply_to else ""
    if reply_to:
        # The wire form: a non-ASCII domain as IDNA, never an encoded-word.
        message["Reply-To"] = _address_header(reply_to)
    message["Subject"] = subject
    message["Date"] = format_datetime(localtime())
    message_id = message_id or new_message_id(sender)
    message["Message-ID"] = message_id
    for name, value in extra_headers:
        try:
            check_header_name(name)
        except ValueError as exc:
            raise MessageError(f"header {shorten(name)}: {exc}") from None
        try:
            check_header_text(value)
        except ValueError as exc:
            raise MessageError(f"header {name}: {exc}") from None
        message[name] = value
    # A non-ASCII body goes out quoted-printable, never 8bit (the email package's
    # choice for short lines): a server without 8BITMIME (RFC 6152) must not be
    # sent 8-bit data, and a 7-bit body passes every server and relay unchanged.
    cte = None if body.isascii() else "quoted-printable"
    message.set_content(body, subtype="plain", charset="utf-8", cte=cte)
    for attachment in attachments:
        try:
            check_header_text(attachment.filename)
        except ValueError as exc:
            raise MessageError(f"attachment name: {exc}") from None
        main, sub = attachment.mime_type
        message.add_attachment(
            attachment.data, maintype=main, subtype=sub, filename=attachment.filename
        )

    recipients: list[str] = []
    extra = [settings.copy_to] if settings.copy_to else []
    for address in [*to_list, *cc_list, *_addresses("copy_to", extra)]:
        if address.lower() not in {r.lower() for r in recipients}:
            recipients.append(address)
    return Outgoing(
        message=message,
        sender=sender,
        recipients=tuple(recipients),
        message_id=message_id,
        smtputf8=not all(a.isascii() for a in [sender, *recipients, reply_to]),
    )

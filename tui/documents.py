"""Business documents and contacts: models, folder loading and the sample set.

A documents folder looks like this (JSON, one document per file, meant to be
edited by hand)::

    <folder>/business.json          the business profile (optional)
    <folder>/contacts.json          a list of customers and suppliers
    <folder>/documents/<id>.json    one document each; the id is the file stem

Money is ``Decimal`` everywhere (JSON numbers are parsed as ``Decimal``, never
``float``) and every amount is quantized to the currency's minor unit with
``ROUND_HALF_UP``. Totals are computed; a file that states a ``total`` that
does not match is reported as a problem naming the file and the difference,
never silently fixed.

``load_folder`` never raises for a bad file: every problem becomes a
``Problem(file, line, message)`` and the file is skipped, so one broken file
does not hide the others. Files over ``MAX_FILE_BYTES`` are not read at all.

This is a service module: no Textual import (DESIGN.md section 8).
"""

from __future__ import annotations

import datetime as dt
import json
import json.decoder
import json.scanner
import os
import re
import stat
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from transports.addresses import check_header_text, normalize_address

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Files larger than this are reported and skipped without being read."""

DocumentKind = Literal["invoice", "quote", "purchase_order", "statement", "report"]

# ISO 4217 active codes (2026) and their minor units where not 2.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
_SYMBOLS: dict[str, str] = {"EUR": "€", "GBP": "£", "USD": "$", "JPY": "¥"}


def minor_units(currency: str) -> int:
    """Digits after the decimal point for a currency (JPY 0, EUR 2, KWD 3)."""
    return _MINOR_UNITS.get(currency, 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, halves away from zero."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal, currency: str) -> str:
    """``1234.5`` in EUR → ``1,234.50``; in JPY → ``1,235`` (no symbol)."""
    return f"{quantize(amount, currency):,.{minor_units(currency)}f}"


def format_money(amount: Decimal, currency: str) -> str:
    """``€1,234.50``, ``-£12.00``, ``¥120,000``, ``CHF 99.90``."""
    text = format_amount(abs(amount), currency)
    symbol = _SYMBOLS.get(currency)
    body = f"{symbol}{text}" if symbol else f"{currency} {text}"
    return f"-{body}" if quantize(amount, currency) < 0 else body


def format_quantity(value: Decimal) -> str:
    """A quantity without trailing zeros: ``2``, ``1.5``, ``0.25``."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _text(value: str, limit: int = 500) -> str:
    check_header_text(value)
    if len(value) > limit:
        raise ValueError(f"is longer than {limit} characters")
    return value


ShortText = Annotated[str, Field(max_length=500)]

# Bounds keep every sum inside Decimal's default 28-digit precision, so quantizing
# can never raise (a 1E+30 price is a typo, reported like any other field error).
Money = Annotated[Decimal, Field(ge=-(10**12), le=10**12, allow_inf_nan=False)]


class _Model(BaseModel):
    """Base of every file model: unknown keys are errors, strings are single lines."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        # CR/LF in any name, number or address would reach an email header or a PDF
        # line; reject it once here for every string field of every model.
        if isinstance(data, dict):
            for key, value in data.items():
                values = value if isinstance(value, list) else [value]
                for item in values:
                    if isinstance(item, str):
                        try:
                            check_header_text(item)
                        except ValueError as exc:
                            raise ValueError(f"{key}: {exc}") from None
        return data


class Business(_Model):
    """The business that sends the documents (``business.json``)."""

    name: Annotated[str, Field(max_length=200)] = ""
    address: Annotated[list[ShortText], Field(max_length=10)] = Field(default_factory=list)
    """Postal address, one line per item."""
    email: str = ""
    phone: ShortText = ""
    website: ShortText = ""
    vat_id: ShortText = ""
    bank: Annotated[list[ShortText], Field(max_length=10)] = Field(default_factory=list)
    """Bank details, one line per item (account holder, IBAN, BIC …)."""

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        return normalize_address(value) if value else value


class Contact(_Model):
    """A customer or a supplier, with one or more email addresses."""

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["customer", "supplier"]
    emails: Annotated[list[str], Field(min_length=1, max_length=20)]
    contact_person: ShortText = ""
    address: Annotated[list[ShortText], Field(max_length=10)] = Field(default_factory=list)
    language: Annotated[str, Field(max_length=35)] = ""
    """Optional language tag (``de``, ``ja``) for templates."""

    @field_validator("emails")
    @classmethod
    def _check_emails(cls, value: list[str]) -> list[str]:
        return [normalize_address(address) for address in value]


class Line(_Model):
    """One line of an invoice, quote or purchase order."""

    description: Annotated[str, Field(min_length=1, max_length=300)]
    quantity: Annotated[Decimal, Field(gt=0, le=10**9, allow_inf_nan=False)]
    unit: Annotated[str, Field(max_length=20)] = ""
    unit_price: Money
    tax_rate: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] = Decimal(0)
    """Tax rate in percent (``19`` for 19 %)."""


class _Document(_Model):
    """Fields every document has. ``id`` comes from the file name, not the file."""

    LABEL: ClassVar[str] = "Document"
    id: str = ""
    number: Annotated[str, Field(min_length=1, max_length=64)]
    contact_id: Annotated[str, Field(min_length=1)]
    issue_date: dt.date
    currency: str
    reference: ShortText = ""
    notes: list[ShortText] = Field(default_factory=list)
    stated_total: Money | None = Field(default=None, alias="total")
    """The total written in the file, if any; checked against the computed one."""

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, GBP, USD)")
        return value

    @property
    def title(self) -> str:
        """``Invoice INV-0042``."""
        return f"{self.LABEL} {self.number}"

    @property
    def total(self) -> Decimal | None:
        """The computed total (``None`` for reports)."""
        return None

    def _check_stated_total(self) -> None:
        computed = self.total
        if self.stated_total is None or computed is None:
            return
        if self.stated_total != computed:
            diff = self.stated_total - computed
            raise ValueError(
                f"total: stated total {format_amount(self.stated_total, self.currency)} "
                f"{self.currency} does not match the computed total "
                f"{format_amount(computed, self.currency)} {self.currency} "
                f"(difference {diff:+} {self.currency}); fix the lines or the total"
            )


class TaxAmount(NamedTuple):
    """Tax at one rate: the base it applies to and the amount."""

    rate: Decimal
    base: Decimal
    amount: Decimal


class _LineDocument(_Document):
    """Invoice, quote and purchase order: lines, tax per rate, totals."""

    lines: Annotated[list[Line], Field(min_length=1, max_length=2000)]

    def line_total(self, line: Line) -> Decimal:
        """Quantity × unit price, rounded to the currency."""
        return quantize(line.quantity * line.unit_price, self.currency)

    @property
    def subtotal(self) -> Decimal:
        """Sum of the line totals."""
        return sum((self.line_total(line) for line in self.lines), Decimal(0))

    @property
    def taxes(self) -> list[TaxAmount]:
        """Tax per rate (computed on each rate's base, then rounded), highest rate first."""
        bases: dict[Decimal, Decimal] = {}
        for line in self.lines:
            rate = line.tax_rate  # 19 and 19.0 are equal keys
            bases[rate] = bases.get(rate, Decimal(0)) + self.line_total(line)
        return [
            TaxAmount(rate, base, quantize(base * rate / 100, self.currency))
            for rate, base in sorted(bases.items(), reverse=True)
        ]

    @property
    def total(self) -> Decimal:
        """Subtotal plus every tax."""
        return self.subtotal + sum((tax.amount for tax in self.taxes), Decimal(0))

    @model_validator(mode="after")
    def _check_total(self) -> _LineDocument:
        self._check_stated_total()
        return self


class Invoice(_LineDocument):
    """An invoice to a customer."""

    LABEL: ClassVar[str] = "Invoice"
    kind: Literal["invoice"]
    due_date: dt.date
    payment_terms: ShortText = ""

    @model_validator(mode="after")
    def _check_dates(self) -> Invoice:
        if self.due_date < self.issue_date:
            raise ValueError("due_date: is before issue_date")
        return self


class Quote(_LineDocument):
    """A quote (offer) to a customer."""

    LABEL: ClassVar[str] = "Quote"
    kind: Literal["quote"]
    valid_until: dt.date

    @model_validator(mode="after")
    def _check_dates(self) -> Quote:
        if self.valid_until < self.issue_date:
            raise ValueError("valid_until: is before issue_date")
        return self


class PurchaseOrder(_LineDocument):
    """A purchase order to a supplier."""

    LABEL: ClassVar[str] = "Purchase order"
    kind: Literal["purchase_order"]
    delivery_date: dt.date | None = None
    delivery_address: list[ShortText] = Field(default_factory=list)


class StatementEntry(_Model):
    """One movement on a statement: positive amounts are charges, negative payments."""

    date: dt.date
    description: Annotated[str, Field(min_length=1, max_length=300)]
    reference: ShortText = ""
    amount: Money


class Statement(_Document):
    """A statement of account: opening balance, entries, closing balance."""

    LABEL: ClassVar[str] = "Statement"
    kind: Literal["statement"]
    period_start: dt.date
    period_end: dt.date
    opening_balance: Money = Decimal(0)
    entries: Annotated[list[StatementEntry], Field(max_length=5000)] = Field(default_factory=list)

    @property
    def closing_balance(self) -> Decimal:
        """Opening balance plus every entry."""
        amounts = (quantize(entry.amount, self.currency) for entry in self.entries)
        return quantize(self.opening_balance, self.currency) + sum(amounts, Decimal(0))

    @property
    def total(self) -> Decimal:
        """The closing balance (what is due)."""
        return self.closing_balance

    @model_validator(mode="after")
    def _check(self) -> Statement:
        if self.period_end < self.period_start:
            raise ValueError("period_end: is before period_start")
        self._check_stated_total()
        return self


Cell = str | int | Decimal


class Report(_Document):
    """A tabular report sent to one or more contacts (``recipients``)."""

    LABEL: ClassVar[str] = "Report"
    kind: Literal["report"]
    contact_id: str = ""
    """Set from the first recipient; a report file lists ``recipients`` instead."""
    currency: str = "EUR"
    report_title: Annotated[str, Field(min_length=1, max_length=200, alias="title")]
    subtitle: ShortText = ""
    columns: Annotated[list[ShortText], Field(min_length=1, max_length=20)]
    rows: Annotated[list[list[Cell]], Field(max_length=10000)]
    totals: list[Cell] | None = None
    recipients: Annotated[list[str], Field(min_length=1)]

    @property
    def title(self) -> str:
        """The report's own title."""
        return self.report_title

    @model_validator(mode="before")
    @classmethod
    def _contact_from_recipients(cls, data: Any) -> Any:
        if isinstance(data, dict) and "contact_id" not in data:
            recipients = data.get("recipients")
            if isinstance(recipients, list) and recipients and isinstance(recipients[0], str):
                data = {**data, "contact_id": recipients[0]}
        return data

    @model_validator(mode="after")
    def _check_shape(self) -> Report:
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"rows: row {index} has {len(row)} cells, the columns are {width}")
            for cell in row:
                if isinstance(cell, str):
                    _text(cell)
        for cell in self.totals or []:
            if isinstance(cell, str):
                _text(cell)
        if self.totals is not None and len(self.totals) != width:
            raise ValueError(f"totals: has {len(self.totals)} cells, the columns are {width}")
        if self.stated_total is not None:
            raise ValueError("total: a report has no total; use the totals row")
        return self


Document = Annotated[
    Invoice | Quote | PurchaseOrder | Statement | Report, Field(discriminator="kind")
]
"""Any document; ``kind`` in the file says which."""

AnyDocument = Invoice | Quote | PurchaseOrder | Statement | Report
_DOCUMENT_ADAPTER: TypeAdapter[AnyDocument] = TypeAdapter(Document)


def parse_document(data: Any, doc_id: str) -> AnyDocument:
    """Validate one document's JSON data (raises ``ValidationError``)."""
    if isinstance(data, dict):
        if "id" in data:
            data = {key: value for key, value in data.items() if key != "id"}
        data = {**data, "id": doc_id}
    return _DOCUMENT_ADAPTER.validate_python(data)


class Problem(NamedTuple):
    """A file that could not be loaded (or part of one), with the line when known."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.message}"


class Library:
    """Everything loaded from a documents folder, with the problems found."""

    def __init__(
        self,
        folder: Path,
        documents: dict[str, AnyDocument],
        contacts: dict[str, Contact],
        business: Business,
        problems: list[Problem],
    ) -> None:
        self.folder = folder
        self.documents = documents
        self.contacts = contacts
        self.business = business
        self.problems = problems

    def contact(self, doc: AnyDocument) -> Contact:
        """The document's contact (for a report: its first recipient)."""
        return self.contacts[doc.contact_id]

    def recipients(self, doc: AnyDocument) -> list[str]:
        """Email addresses the document goes to by default, without duplicates."""
        ids = doc.recipients if isinstance(doc, Report) else [doc.contact_id]
        found: list[str] = []
        for contact_id in ids:
            contact = self.contacts.get(contact_id)
            for address in contact.emails if contact else []:
                if address not in found:
                    found.append(address)
        return found

    def __repr__(self) -> str:
        return (
            f"Library({str(self.folder)!r}, {len(self.documents)} documents, "
            f"{len(self.contacts)} contacts, {len(self.problems)} problems)"
        )


# --- reading files ---------------------------------------------------------------------------


class _FileError(Exception):
    """A file that cannot be used at all; becomes one Problem."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _read_json(path: Path) -> tuple[Any, str]:
    """Read a bounded UTF-8 JSON file: (data with Decimal numbers, text)."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _FileError(None, f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _FileError(None, f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; skipped")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _FileError(line, "is not UTF-8 text") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=Decimal), text
    except json.JSONDecodeError as exc:
        raise _FileError(exc.lineno, f"is not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _FileError(None, "is nested too deeply") from None


class _Located(dict[str, Any]):
    """A JSON object that remembers where it starts and ends in the text."""

    start = 0
    end = 0


def _locate(text: str) -> Any:
    """Parse again with positions: only used to find the line of a validation error.

    The pure-Python scanner calls ``decoder.parse_object`` for every object, which
    lets us record where each one starts and ends (the C scanner does not).
    """
    decoder = json.JSONDecoder(
        object_pairs_hook=_Located, parse_float=Decimal, parse_constant=Decimal
    )
    json_object: Any = getattr(json.decoder, "JSONObject")  # noqa: B009 (untyped stdlib)

    def parse_object(state: tuple[str, int], *args: Any) -> tuple[Any, int]:
        obj, end = json_object(state, *args)
        if isinstance(obj, _Located):
            obj.start, obj.end = state[1] - 1, end
        return obj, end

    setattr(decoder, "parse_object", parse_object)  # noqa: B010
    setattr(decoder, "scan_once", getattr(json.scanner, "py_make_scanner")(decoder))  # noqa: B009, B010
    try:
        return decoder.decode(text)
    except RecursionError:
        # The pure-Python scanner needs more stack per level than json.loads:
        # a file that loaded can still be too deep to locate. Lines are optional.
        return {}


def _line_of(text: str, located: Any, loc: Sequence[int | str]) -> int | None:
    """Best-effort line of the field at ``loc`` (a pydantic error location)."""
    line: int | None = None
    node = located
    for part in loc:
        if isinstance(node, _Located) and isinstance(part, str) and part in node:
            span = text[node.start : node.end]
            match = re.search(rf'"{re.escape(part)}"\s*:', span)
            if match:
                line = text.count("\n", 0, node.start + match.start()) + 1
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, _Located):
                line = text.count("\n", 0, node.start) + 1
        else:
            break
    return line


_ALIASES = {"stated_total": "total", "report_title": "title"}


def _field_path(loc: Sequence[int | str]) -> str:
    """``('lines', 2, 'quantity')`` → ``lines[2].quantity``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = _ALIASES.get(part, part)
            path += f".{name}" if path else name
    return path


_KINDS = frozenset({"invoice", "quote", "purchase_order", "statement", "report"})


def _validation_problems(
    path: Path, text: str, exc: ValidationError, prefix: Sequence[int | str] = ()
) -> list[Problem]:
    located: Any = None
    problems = []
    for error in exc.errors(include_url=False):
        # A document's errors start with the union tag ("invoice", …): not a field.
        loc = [*prefix, *(p for i, p in enumerate(error["loc"]) if i or p not in _KINDS)]
        if located is None:
            try:
                located = _locate(text)
            except (ValueError, RecursionError):
                located = {}
        field = _field_path(loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        # Whole-model checks name their field as "field: message".
        named = re.match(r"^([a-z_]+): (.*)$", message, re.DOTALL)
        if named and error["type"] == "value_error":
            loc = [*loc, named.group(1)]
            field, message = _field_path(loc), named.group(2)
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "too_long" and "max_length" in error.get("ctx", {}):
            ctx = error.get("ctx", {})
            message = (
                f"has {ctx.get('actual_length')} entries; at most {ctx['max_length']} are "
                "allowed (split it into several documents)"
            )
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        elif error["type"] in {"union_tag_not_found", "union_tag_invalid"}:
            field, loc = "kind", ["kind"]
            message = "must be one of " + ", ".join(sorted(_KINDS))
        problems.append(
            Problem(path, _line_of(text, located, loc), f"{field}: {message}" if field else message)
        )
    return problems


def _scan_json_files(folder: Path) -> tuple[list[Path], list[Problem]]:
    """The folder's direct ``*.json`` regular files (no recursion, no following loops)."""
    files: list[Path] = []
    problems: list[Problem] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return files, problems
    except OSError as exc:
        return files, [Problem(folder, None, f"cannot be listed: {exc.strerror or exc}")]
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.name.endswith(".json") or entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if not entry.is_file():
                continue
            size = entry.stat().st_size
        except OSError as exc:
            problems.append(Problem(path, None, f"cannot be read: {exc.strerror or exc}"))
            continue
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // (1024 * 1024)
            problems.append(Problem(path, None, f"is larger than {limit} MB; skipped"))
            continue
        files.append(path)
    return files, problems


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file: "missing", another problem, or None (fine).

    ``Path.is_file()`` says False for a symlink loop or an unreadable folder too,
    which would report such a file as simply missing.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return "is a link to a missing file" if path.is_symlink() else "missing"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file; skipped"
    return None


def _load_business(folder: Path, default_name: str, problems: list[Problem]) -> Business:
    path = folder / "business.json"
    state = _not_a_file(path)
    if state is not None:
        if state != "missing":
            problems.append(Problem(path, None, state))
        return Business(name=default_name)
    try:
        data, text = _read_json(path)
        return Business.model_validate(data)
    except _FileError as exc:
        problems.append(Problem(path, exc.line, exc.message))
    except ValidationError as exc:
        problems.extend(_validation_problems(path, text, exc))
    return Business(name=default_name)


def _load_contacts(folder: Path, problems: list[Problem]) -> dict[str, Contact]:
    path = folder / "contacts.json"
    contacts: dict[str, Contact] = {}
    state = _not_a_file(path)
    if state is not None:
        if state == "missing":
            state = "is missing: no customers or suppliers"
        problems.append(Problem(path, None, state))
        return contacts
    try:
        data, text = _read_json(path)
    except _FileError as exc:
        problems.append(Problem(path, exc.line, exc.message))
        return contacts
    if not isinstance(data, list):
        problems.append(Problem(path, 1, "must be a JSON list of contacts"))
        return contacts
    for index, item in enumerate(data):
        try:
            contact = Contact.model_validate(item)
        except ValidationError as exc:
            problems.extend(_validation_problems(path, text, exc, prefix=(index,)))
            continue
        if contact.id in contacts:
            located = _locate(text)
            line = _line_of(text, located, [index])
            problems.append(Problem(path, line, f"duplicate contact id {contact.id!r}; skipped"))
            continue
        contacts[contact.id] = contact
    return contacts


def _load_documents(
    folder: Path, contacts: dict[str, Contact], problems: list[Problem]
) -> dict[str, AnyDocument]:
    documents: dict[str, AnyDocument] = {}
    files, scan_problems = _scan_json_files(folder / "documents")
    problems.extend(scan_problems)
    for path in files:
        try:
            data, text = _read_json(path)
            if not isinstance(data, dict):
                raise _FileError(1, "must be a JSON object")
        except _FileError as exc:
            problems.append(Problem(path, exc.line, exc.message))
            continue
        try:
            doc = parse_document(data, path.stem)
        except ValidationError as exc:
            problems.extend(_validation_problems(path, text, exc))
            continue
        wanted = doc.recipients if isinstance(doc, Report) else [doc.contact_id]
        unknown = [contact_id for contact_id in wanted if contact_id not in contacts]
        if unknown:
            key = "recipients" if isinstance(doc, Report) else "contact_id"
            line = _line_of(text, _locate(text), [key])
            names = ", ".join(repr(u) for u in unknown)
            problems.append(
                Problem(path, line, f"{key}: unknown contact {names} (not in contacts.json)")
            )
            continue
        documents[doc.id] = doc
    return documents


def load_folder(path: Path, *, business_name: str = "") -> Library:
    """Load a documents folder; bad files become ``Library.problems`` and are skipped.

    Args:
        path: The documents folder.
        business_name: The business name to use when there is no ``business.json``
            (the settings' ``from_name``).
    """
    problems: list[Problem] = []
    business = _load_business(path, business_name, problems)
    contacts = _load_contacts(path, problems)
    documents = _load_documents(path, contacts, problems)
    return Library(path, documents, contacts, business, problems)


# --- samples ---------------------------------------------------------------------------------


def _sample_files() -> Iterable[tuple[str, Traversable]]:
    root = resources.files("tui") / "samples"
    for entry in root.iterdir():
        if entry.is_file() and entry.name.endswith(".json"):
            yield entry.name, entry
        elif entry.is_dir() and entry.name == "documents":
            for item in entry.iterdir():
                if item.is_file() and item.name.endswith(".json"):
                    yield f"documents/{item.name}", item


def ensure_documents_folder(path: Path) -> None:
    """Copy the sample set into ``path`` when it is missing or empty; never overwrite.

    A folder with anything in it is the user's and is left alone.
    """
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{path} is not a folder")
        if any(path.iterdir()):
            return
    path.mkdir(parents=True, exist_ok=True)
    for name, source in _sample_files():
        target = path / name
        target.parent.mkdir(exist_ok=True)
        try:
            with target.open("xb") as stream:  # "x": never replace an existing file
                stream.write(source.read_bytes())
        except FileExistsError:
            continue

"""Document and contact models, folder loading, problems and the sample set."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from tests.documents.helpers import CONTACTS, invoice, write_folder
from tui.documents import (
    MAX_FILE_BYTES,
    Invoice,
    Report,
    Statement,
    ensure_documents_folder,
    format_money,
    load_folder,
)


def test_valid_invoice_computes_lines_tax_per_rate_and_total(tmp_path: Path) -> None:
    lib = load_folder(write_folder(tmp_path, {"INV-0042": invoice(total="46.75")}))
    assert lib.problems == []
    doc = lib.documents["INV-0042"]
    assert isinstance(doc, Invoice)
    assert (doc.id, doc.kind, doc.number, doc.title) == (
        "INV-0042",
        "invoice",
        "INV-0042",
        "Invoice INV-0042",
    )
    assert [doc.line_total(line) for line in doc.lines] == [Decimal("30.30"), Decimal("9.99")]
    assert doc.subtotal == Decimal("40.29")
    assert [(t.rate, t.base, t.amount) for t in doc.taxes] == [
        (Decimal(19), Decimal("30.30"), Decimal("5.76")),
        (Decimal(7), Decimal("9.99"), Decimal("0.70")),
    ]
    assert doc.total == Decimal("46.75")
    assert isinstance(doc.total, Decimal)
    assert lib.recipients(doc) == ["billing@mueller.example.test", "jw@mueller.example.test"]
    assert lib.contact(doc).name == "Müller GmbH"


def test_json_numbers_are_decimals_never_floats(tmp_path: Path) -> None:
    # 0.1 + 0.2 as floats is 0.30000000000000004; as Decimal it is exact.
    lines = [{"description": "a", "quantity": 3, "unit_price": 0.1}]
    lib = load_folder(write_folder(tmp_path, {"x": invoice(lines=lines, total=0.30)}))
    assert lib.problems == []
    assert lib.documents["x"].total == Decimal("0.30")


def test_json_nan_and_infinity_are_field_errors_not_floats(tmp_path: Path) -> None:
    text = json.dumps(invoice()).replace('"10.10"', "NaN").replace('"9.99"', "-Infinity")
    lib = load_folder(write_folder(tmp_path, {"x": text}))
    assert lib.documents == {}
    assert sorted(p.message.split(":")[0] for p in lib.problems) == [
        "lines[0].unit_price",
        "lines[1].unit_price",
    ]


def test_rounding_is_half_up_to_the_minor_unit(tmp_path: Path) -> None:
    line = {"description": "a", "quantity": 1, "unit_price": "0.125", "tax_rate": 0}
    yen = {"description": "b", "quantity": 3, "unit_price": "333.5", "tax_rate": 10}
    lib = load_folder(
        write_folder(
            tmp_path,
            {"eur": invoice(lines=[line]), "jpy": invoice(lines=[yen], currency="JPY")},
        )
    )
    assert lib.problems == []
    assert lib.documents["eur"].total == Decimal("0.13")  # banker's rounding would give 0.12
    jpy = lib.documents["jpy"]
    assert jpy.total == Decimal(1001) + Decimal(100)  # 1000.5 → 1001, tax 100.1 → 100
    assert format_money(Decimal("1101"), "JPY") == "¥1,101"
    assert format_money(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert format_money(Decimal("-12"), "GBP") == "-£12.00"
    assert format_money(Decimal("99.9"), "CHF") == "CHF 99.90"
    assert format_money(Decimal("1.2345"), "KWD") == "KWD 1.235"


@pytest.mark.parametrize(
    ("changes", "expected_field", "expected_text"),
    [
        ({"contact_id": "nobody"}, "contact_id", "unknown contact 'nobody'"),
        (
            {"lines": [{"description": "x", "quantity": -1, "unit_price": 1}]},
            "lines[0].quantity",
            "greater than 0",
        ),
        (
            {"lines": [{"description": "x", "quantity": 0, "unit_price": 1}]},
            "lines[0].quantity",
            "greater than 0",
        ),
        ({"currency": "EURO"}, "currency", "not an ISO 4217 currency code"),
        ({"currency": "XYZ"}, "currency", "not an ISO 4217 currency code"),
        ({"total": "46.74"}, "total", "difference -0.01 EUR"),
        ({"due_date": "2026-10-01"}, "due_date", "is before issue_date"),
        ({"number": "INV-1\r\nBcc: evil@example.com"}, "number", "line break"),
        ({"kind": "receipt"}, "kind", "must be one of"),
        ({"colour": "red"}, "colour", "is not a known field"),
        ({"lines": []}, "lines", "at least 1"),
        (
            {"lines": [{"description": "x", "quantity": 1, "unit_price": "1E+30"}]},
            "lines[0].unit_price",
            "less than or equal to",
        ),
        (
            {"lines": [{"description": "x", "quantity": 1, "unit_price": "NaN"}]},
            "lines[0].unit_price",
            "finite",
        ),
    ],
)
def test_invalid_documents_are_problems_naming_file_and_field(
    tmp_path: Path, changes: dict[str, object], expected_field: str, expected_text: str
) -> None:
    lib = load_folder(write_folder(tmp_path, {"bad": invoice(**changes), "good": invoice()}))
    assert list(lib.documents) == ["good"]
    assert len(lib.problems) >= 1
    problem = lib.problems[0]
    assert problem.file == tmp_path / "documents" / "bad.json"
    assert expected_text in problem.message
    assert problem.message.startswith(expected_field)
    assert "bad.json" in str(problem)


def test_wrong_stated_total_names_file_line_and_difference(tmp_path: Path) -> None:
    lib = load_folder(write_folder(tmp_path, {"INV-7": invoice(total="50.00")}))
    assert lib.documents == {}
    [problem] = lib.problems
    assert problem.file.name == "INV-7.json"
    text = (tmp_path / "documents" / "INV-7.json").read_text()
    assert problem.line == 1 + text.splitlines().index('  "total": "50.00"')
    assert "stated total 50.00 EUR does not match the computed total 46.75 EUR" in problem.message
    assert "difference +3.25 EUR" in problem.message
    assert str(problem).startswith(str(tmp_path / "documents" / "INV-7.json"))


def test_field_error_carries_the_line_of_the_field(tmp_path: Path) -> None:
    lines = [
        {"description": "ok", "quantity": 1, "unit_price": 1},
        {"description": "bad", "quantity": -2, "unit_price": 1},
    ]
    folder = write_folder(tmp_path, {"x": invoice(lines=lines)})
    text = (folder / "documents" / "x.json").read_text()
    expected = next(
        number for number, line in enumerate(text.splitlines(), 1) if '"quantity": -2' in line
    )
    [problem] = load_folder(folder).problems
    assert problem.message.startswith("lines[1].quantity:")
    assert problem.line == expected


def test_broken_json_is_reported_with_its_line_and_the_rest_still_loads(tmp_path: Path) -> None:
    broken = '{\n  "kind": "invoice",\n  "number": "INV-1",\n  "lines": [,]\n}\n'
    folder = write_folder(tmp_path, {"a": invoice(), "broken": broken, "z": invoice()})
    lib = load_folder(folder)
    assert sorted(lib.documents) == ["a", "z"]
    [problem] = lib.problems
    assert problem.file.name == "broken.json"
    assert problem.line == 4
    assert "not valid JSON" in problem.message


def test_non_utf8_file_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, {"a": invoice()})
    (folder / "documents" / "latin1.json").write_bytes(b'{\n"number": "M\xfcller"\n}')
    lib = load_folder(folder)
    assert list(lib.documents) == ["a"]
    assert [(p.file.name, p.line) for p in lib.problems] == [("latin1.json", 2)]
    assert "UTF-8" in lib.problems[0].message


def test_oversize_file_is_skipped_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_folder(tmp_path, {"a": invoice()})
    big = folder / "documents" / "huge.json"
    with big.open("wb") as stream:  # sparse: 6 MB on paper, nothing on disk
        stream.truncate(MAX_FILE_BYTES + 1024 * 1024)
    opened: list[str] = []
    real_open = Path.open

    def spy_open(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(self.name)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", spy_open)
    lib = load_folder(folder)
    assert list(lib.documents) == ["a"]
    [problem] = lib.problems
    assert problem.file.name == "huge.json"
    assert "larger than 5 MB" in problem.message
    assert "huge.json" not in opened


def test_symlink_loops_and_subfolders_are_not_followed(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, {"a": invoice()})
    docs = folder / "documents"
    os.symlink(docs, docs / "loop.json")  # a directory named *.json pointing at itself
    os.symlink(docs / "self.json", docs / "self.json")  # a symlink to itself
    (docs / "sub").mkdir()
    (docs / "sub" / "b.json").write_text(json.dumps(invoice()))
    lib = load_folder(folder)
    assert list(lib.documents) == ["a"]
    assert [p.file.name for p in lib.problems] == ["self.json"]


@pytest.mark.parametrize(
    ("contact", "text"),
    [
        ({"emails": ["not an address"]}, "emails"),
        ({"emails": ["a@example.com\r\nBcc: x@example.com"]}, "line break"),
        ({"name": "Evil\nBcc: x@example.com"}, "line break"),
        ({"emails": []}, "at least 1"),
        ({"kind": "partner"}, "kind"),
    ],
)
def test_invalid_contact_is_skipped_and_named(
    tmp_path: Path, contact: dict[str, object], text: str
) -> None:
    bad = {**CONTACTS[0], "id": "bad", **contact}
    folder = write_folder(
        tmp_path, {"a": invoice(), "b": invoice(contact_id="bad")}, [*CONTACTS, bad]
    )
    lib = load_folder(folder)
    assert sorted(lib.contacts) == ["acme", "parts"]
    assert list(lib.documents) == ["a"]
    contact_problem, document_problem = lib.problems
    assert contact_problem.file.name == "contacts.json"
    assert text in contact_problem.message
    assert contact_problem.line is not None and contact_problem.line > 10
    assert document_problem.file.name == "b.json"
    assert "unknown contact 'bad'" in document_problem.message


def test_business_profile_and_fallback_to_the_settings_name(tmp_path: Path) -> None:
    without = load_folder(write_folder(tmp_path / "a", {}), business_name="ACME Ltd")
    assert without.business.name == "ACME Ltd"
    profile = {"name": "Lumen GmbH", "address": ["Wiesenstraße 14"], "vat_id": "DE 1"}
    with_profile = load_folder(
        write_folder(tmp_path / "b", {}, business=profile), business_name="x"
    )
    assert with_profile.business.name == "Lumen GmbH"
    assert with_profile.business.address == ["Wiesenstraße 14"]
    assert with_profile.problems == []


def test_statement_closing_balance_and_report_recipients(tmp_path: Path) -> None:
    statement = {
        "kind": "statement",
        "number": "ST-1",
        "contact_id": "acme",
        "issue_date": "2026-11-27",
        "period_start": "2026-10-01",
        "period_end": "2026-11-26",
        "currency": "EUR",
        "opening_balance": "100.00",
        "entries": [
            {"date": "2026-10-02", "description": "Payment", "amount": "-100.00"},
            {"date": "2026-10-09", "description": "Invoice", "amount": "250.40"},
        ],
        "total": "250.40",
    }
    report = {
        "kind": "report",
        "number": "R-1",
        "title": "Open items",
        "issue_date": "2026-11-27",
        "columns": ["Customer", "Amount"],
        "rows": [["Müller GmbH", "12.00"]],
        "totals": ["Total", "12.00"],
        "recipients": ["parts", "acme", "parts"],
    }
    bad_report = {**report, "rows": [["only one cell"]]}
    lib = load_folder(write_folder(tmp_path, {"st": statement, "r": report, "br": bad_report}))
    st, rpt = lib.documents["st"], lib.documents["r"]
    assert isinstance(st, Statement) and isinstance(rpt, Report)
    assert st.closing_balance == st.total == Decimal("250.40")
    assert (rpt.title, rpt.total, rpt.contact_id) == ("Open items", None, "parts")
    assert lib.recipients(rpt) == [
        "orders@omega.example.com",
        "billing@mueller.example.test",
        "jw@mueller.example.test",
    ]
    [problem] = lib.problems
    assert problem.file.name == "br.json"
    assert problem.message == "rows: row 0 has 1 cells, the columns are 2"
    assert problem.line is not None


def test_missing_contacts_file_and_folder(tmp_path: Path) -> None:
    lib = load_folder(tmp_path / "nowhere")
    assert lib.documents == {} and lib.contacts == {}
    assert [p.file.name for p in lib.problems] == ["contacts.json"]


def test_samples_are_seeded_once_load_cleanly_and_cover_every_type(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "documents"
    ensure_documents_folder(folder)
    lib = load_folder(folder)
    assert lib.problems == []
    assert len(lib.documents) >= 8
    assert len(lib.contacts) >= 5
    kinds = {doc.kind for doc in lib.documents.values()}
    assert kinds == {"invoice", "quote", "purchase_order", "statement", "report"}
    invoices = [doc for doc in lib.documents.values() if isinstance(doc, Invoice)]
    assert {"EUR", "GBP", "USD", "JPY"} <= {doc.currency for doc in invoices}
    assert max(len(doc.lines) for doc in invoices) >= 40
    names = {contact.name for contact in lib.contacts.values()}
    assert {"Müller GmbH", "Zoë Ltd", "株式会社 山田商事"} <= names
    assert any("é" in name for name in names)
    suppliers = {c.id for c in lib.contacts.values() if c.kind == "supplier"}
    orders = [doc for doc in lib.documents.values() if doc.kind == "purchase_order"]
    assert orders and all(doc.contact_id in suppliers for doc in orders)
    assert lib.business.name
    for doc in lib.documents.values():
        assert lib.recipients(doc)

    # A second call, and a call on a folder the user changed, never overwrite.
    edited = folder / "contacts.json"
    edited.write_text("[]", encoding="utf-8")
    ensure_documents_folder(folder)
    assert edited.read_text(encoding="utf-8") == "[]"


def test_seeding_leaves_a_non_empty_folder_alone(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "mine.txt").write_text("keep", encoding="utf-8")
    ensure_documents_folder(tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    ensure_documents_folder(empty)
    assert (empty / "contacts.json").is_file()


def test_duplicate_contact_and_bad_business_file_are_problems(tmp_path: Path) -> None:
    duplicate = {**CONTACTS[0], "name": "Someone else"}
    folder = write_folder(tmp_path, {"a": invoice()}, [*CONTACTS, duplicate])
    (folder / "business.json").write_text('{"name": "X", "email": "nope"}', encoding="utf-8")
    lib = load_folder(folder, business_name="From settings")
    assert lib.contacts["acme"].name == "Müller GmbH"  # the first one wins, the second is named
    assert lib.business.name == "From settings"
    messages = {(p.file.name, p.message.split(":")[0]) for p in lib.problems}
    assert ("contacts.json", "duplicate contact id 'acme'; skipped") in messages
    assert ("business.json", "email") in messages
    assert list(lib.documents) == ["a"]

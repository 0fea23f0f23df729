"""A small, fixed documents folder for the Documents/Email/Sent screen tests and snapshots.

Three invoices to three customers (each with its own address, so the sandbox's
fault hook can refuse one), a quote and one broken file (reported, skipped).
Nothing in it depends on today's date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.documents.helpers import write_folder

CONTACTS: list[dict[str, Any]] = [
    {
        "id": "mueller",
        "name": "Müller GmbH",
        "kind": "customer",
        "emails": ["billing@mueller.example.test"],
        "contact_person": "Jürgen Weiß",
    },
    {
        "id": "zoe",
        "name": "Zoë Ltd",
        "kind": "customer",
        "emails": ["accounts@zoe.example.test"],
    },
    {
        "id": "omega",
        "name": "Ωμέγα Components",
        "kind": "customer",
        "emails": ["orders@omega.example.test"],
    },
]

BUSINESS: dict[str, Any] = {
    "name": "ACME Ltd",
    "address": ["1 High Street", "London"],
    "email": "billing@acme.example.test",
}


def _invoice(number: str, contact: str, day: int, price: str) -> dict[str, Any]:
    return {
        "kind": "invoice",
        "number": number,
        "contact_id": contact,
        "issue_date": f"2026-11-{day:02d}",
        "due_date": "2026-12-31",
        "currency": "EUR",
        "lines": [
            {"description": "Widget", "quantity": 3, "unit": "pcs", "unit_price": price},
            {"description": "Manual", "quantity": 1, "unit_price": "9.99", "tax_rate": 7},
        ],
    }


DOCUMENTS: dict[str, dict[str, Any] | str] = {
    "INV-0042": _invoice("INV-0042", "mueller", 2, "10.10"),
    "INV-0043": _invoice("INV-0043", "zoe", 3, "20.00"),
    "INV-0044": _invoice("INV-0044", "omega", 4, "5.50"),
    "Q-0007": {
        "kind": "quote",
        "number": "Q-0007",
        "contact_id": "zoe",
        "issue_date": "2026-11-05",
        "valid_until": "2026-12-05",
        "currency": "EUR",
        "lines": [{"description": "Consulting", "quantity": 2, "unit": "h", "unit_price": "90"}],
    },
    "BROKEN": '{"kind": "invoice",\n "number": }\n',
}


def make_documents_folder(root: Path) -> Path:
    """Write the folder at ``root`` and return it."""
    return write_folder(root, DOCUMENTS, CONTACTS, BUSINESS)

"""Small builders for documents folders used by the documents tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTACTS: list[dict[str, Any]] = [
    {
        "id": "acme",
        "name": "Müller GmbH",
        "kind": "customer",
        "emails": ["billing@mueller.example.test", "jw@mueller.example.test"],
        "contact_person": "Jürgen Weiß",
        "address": ["Königsallee 1", "40212 Düsseldorf"],
    },
    {
        "id": "parts",
        "name": "Ωμέγα Components",
        "kind": "supplier",
        "emails": ["orders@omega.example.com"],
    },
]


def invoice(**changes: Any) -> dict[str, Any]:
    """A valid two-line EUR invoice: subtotal 40.29, tax 5.76 + 0.70, total 46.75."""
    data: dict[str, Any] = {
        "kind": "invoice",
        "number": "INV-0042",
        "contact_id": "acme",
        "issue_date": "2026-11-01",
        "due_date": "2026-12-01",
        "currency": "EUR",
        "lines": [
            {
                "description": "Widget",
                "quantity": 3,
                "unit": "pcs",
                "unit_price": "10.10",
                "tax_rate": 19,
            },
            {"description": "Manual", "quantity": 1, "unit_price": "9.99", "tax_rate": 7},
        ],
    }
    data.update(changes)
    return data


def write_folder(
    root: Path,
    documents: dict[str, dict[str, Any] | str],
    contacts: list[dict[str, Any]] | str | None = None,
    business: dict[str, Any] | None = None,
) -> Path:
    """Write a documents folder; string values are written verbatim (for broken files)."""
    (root / "documents").mkdir(parents=True, exist_ok=True)
    contact_data = CONTACTS if contacts is None else contacts
    text = contact_data if isinstance(contact_data, str) else json.dumps(contact_data, indent=2)
    (root / "contacts.json").write_text(text, encoding="utf-8")
    if business is not None:
        (root / "business.json").write_text(json.dumps(business, indent=2), encoding="utf-8")
    for doc_id, doc in documents.items():
        body = doc if isinstance(doc, str) else json.dumps(doc, indent=2, ensure_ascii=False)
        (root / "documents" / f"{doc_id}.json").write_text(body, encoding="utf-8")
    return root

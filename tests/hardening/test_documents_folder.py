"""A hostile documents folder: huge, deep, long, looping and unreadable files.

Every bad file is reported by name and skipped; every good file still loads;
nothing takes long or much memory.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from tui.documents import MAX_FILE_BYTES, ensure_documents_folder, load_folder

from .privileges import unprivileged_python

SAMPLE_IDS = {
    "INV-2026-0141",
    "INV-2026-0142",
    "INV-2026-0143",
    "INV-2026-0144",
    "INV-2026-0145",
    "PO-2026-0077",
    "Q-2026-0031",
    "Q-2026-0032",
    "RPT-2026-10",
    "ST-2026-11-MUELLER",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "documents"
    ensure_documents_folder(path)
    return path


def invoice(folder: Path, lines: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "documents" / "INV-2026-0141.json").read_text())
    data.pop("total")
    data["lines"] = [
        {"description": f"Item {n}", "quantity": 1, "unit_price": 1, "tax_rate": 19}
        for n in range(lines)
    ]
    return data


def test_every_bad_file_is_reported_by_name_and_the_rest_loads(folder: Path) -> None:
    docs = folder / "documents"
    with (docs / "huge.json").open("wb") as stream:
        stream.truncate(100 * 1024 * 1024)  # sparse: 100 MB on paper, nothing on disk
    (docs / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (docs / "deep-object.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    (docs / "INV-LONG.json").write_text(json.dumps(invoice(folder, 10_000)))
    (docs / "loop-a.json").symlink_to("loop-b.json")
    (docs / "loop-b.json").symlink_to("loop-a.json")
    (docs / "self.json").symlink_to("self.json")
    (docs / "dangling.json").symlink_to("nowhere.json")
    (docs / "folder.json").mkdir()
    os.mkfifo(docs / "fifo.json")  # opening it would block forever
    (docs / "deep-in-a-field.json").write_text(
        json.dumps(invoice(folder, 1))[:-1] + ', "notes": ' + "[" * 900 + "]" * 900 + "}"
    )
    (docs / "subdir").mkdir()
    (docs / "subdir" / "sub").symlink_to("..")  # a directory loop: never walked

    tracemalloc.start()
    started = time.perf_counter()
    library = load_folder(folder)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert set(library.documents) == SAMPLE_IDS
    problems = {p.file.name: p.message for p in library.problems}
    assert problems["huge.json"] == f"is larger than {MAX_FILE_BYTES // 2**20} MB; skipped"
    assert problems["deep.json"] == "is nested too deeply"
    assert problems["deep-object.json"] == "is nested too deeply"
    assert problems["INV-LONG.json"].startswith("lines: has 10000 entries; at most 2000")
    for name in ("loop-a.json", "loop-b.json", "self.json"):
        assert problems[name] == "cannot be read: Too many levels of symbolic links"
    assert "deep-in-a-field.json" in problems
    # A dangling link, a folder and a FIFO named *.json are not documents: skipped quietly.
    assert not {"dangling.json", "folder.json", "fifo.json"} & set(problems)
    assert elapsed < 5, elapsed
    assert peak < 60 * 2**20, peak  # the 100 MB file is never read


def test_contacts_and_business_that_loop_are_not_called_missing(folder: Path) -> None:
    (folder / "contacts.json").unlink()
    (folder / "contacts.json").symlink_to("contacts.json")
    (folder / "business.json").unlink()
    os.mkfifo(folder / "business.json")
    library = load_folder(folder, business_name="Fallback Ltd")
    problems = {p.file.name: p.message for p in library.problems}
    assert problems["contacts.json"] == "cannot be read: Too many levels of symbolic links"
    assert problems["business.json"] == "is not a regular file; skipped"
    assert library.business.name == "Fallback Ltd"
    # Without contacts no document can be addressed: each is reported, none crash.
    assert library.documents == {}


def test_huge_contacts_file_is_read_bounded(folder: Path) -> None:
    contacts = folder / "contacts.json"
    with contacts.open("wb") as stream:
        stream.write(b"[")
        stream.truncate(100 * 1024 * 1024)
    tracemalloc.start()
    library = load_folder(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [str(p) for p in library.problems if p.file == contacts] == [
        f"{contacts}: is larger than {MAX_FILE_BYTES // 2**20} MB; skipped"
    ]
    assert peak < 3 * MAX_FILE_BYTES, peak


def test_2000_lines_load_and_render_within_bounds(folder: Path) -> None:
    """The most lines a document may have: loads fast; the PDF has a sane page count."""
    import io

    from pypdf import PdfReader

    from tui.pdf import render_pdf

    docs = folder / "documents"
    data = invoice(folder, 500)  # 2000 take ~10 s to render: 500 keep CI fast
    (docs / "INV-BIG.json").write_text(json.dumps(data))
    started = time.perf_counter()
    library = load_folder(folder)
    assert time.perf_counter() - started < 2
    started = time.perf_counter()
    pdf = render_pdf(library.documents["INV-BIG"], library)
    elapsed = time.perf_counter() - started
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert 10 <= pages <= 40, pages  # ~40 lines a page, never one line per page
    assert elapsed < 10, elapsed


READ_AS_AN_ORDINARY_USER = """
import json, sys
from pathlib import Path
from tui.documents import load_folder
library = load_folder(Path(sys.argv[1]))
print(json.dumps({
    "documents": sorted(library.documents),
    "problems": {p.file.name: p.message for p in library.problems},
}))
"""


def test_unreadable_files_and_folders_are_reported_and_the_rest_loads(
    folder: Path, tmp_path: Path
) -> None:
    os.chmod(tmp_path, 0o755)
    docs = folder / "documents"
    os.chmod(docs / "Q-2026-0031.json", 0o000)
    os.chmod(folder / "business.json", 0o000)
    try:
        result = unprivileged_python(READ_AS_AN_ORDINARY_USER, str(folder))
    finally:
        os.chmod(docs / "Q-2026-0031.json", 0o644)
        os.chmod(folder / "business.json", 0o644)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["problems"] == {
        "Q-2026-0031.json": "cannot be read: Permission denied",
        "business.json": "cannot be read: Permission denied",
    }
    assert set(seen["documents"]) == SAMPLE_IDS - {"Q-2026-0031"}

    os.chmod(docs, 0o000)
    try:
        result = unprivileged_python(READ_AS_AN_ORDINARY_USER, str(folder))
    finally:
        os.chmod(docs, 0o755)
    seen = json.loads(result.stdout)
    assert seen["documents"] == []
    assert seen["problems"] == {"documents": "cannot be listed: Permission denied"}

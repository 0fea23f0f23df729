"""PDF rendering: read back with pypdf, page breaks, fonts, determinism, glyph checks."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fpdf.fonts import TTFFont

from tests.documents.fontmaker import make_font
from tests.documents.helpers import invoice, write_folder
from tui import pdf as pdfmod
from tui.documents import (
    Invoice,
    Library,
    Report,
    Statement,
    ensure_documents_folder,
    format_money,
    load_folder,
)
from tui.pdf import MissingGlyphsError, pdf_filename, render_pdf

FIXED = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)
CJK_NAME = "株式会社 山田商事"


def pages_text(data: bytes) -> list[str]:
    """The text of each page, as a PDF reader sees it."""
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text() for page in reader.pages]


@pytest.fixture
def samples(tmp_path: Path) -> Library:
    folder = tmp_path / "samples"
    ensure_documents_folder(folder)
    library = load_folder(folder)
    assert library.problems == []
    return library


@pytest.fixture
def no_system_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without any CJK font installed."""
    monkeypatch.setattr(pdfmod, "SYSTEM_FALLBACK_FONTS", ())


def test_invoice_reads_back_number_contact_lines_and_total(samples: Library) -> None:
    doc = samples.documents["INV-2026-0141"]
    assert isinstance(doc, Invoice)
    [text] = pages_text(render_pdf(doc, samples, creation_date=FIXED))
    assert "INVOICE" in text
    assert doc.number in text
    assert "Müller GmbH" in text
    assert "Lumen Messtechnik GmbH" in text
    for line in doc.lines:
        assert line.description in text
    assert format_money(doc.total, doc.currency) == "€4,997.74"
    assert "€4,997.74" in text
    assert "Tax 19 % on €4,155.00" in text and "€789.45" in text
    assert "Tax 7 % on €49.80" in text and "€3.49" in text
    assert "2 December 2026" in text  # due date
    assert "IBAN: DE89 3704 0044 0532 0130 00" in text
    assert "Page 1 of 1" in text


def test_unicode_names_survive(tmp_path: Path) -> None:
    contacts = [
        {
            "id": "c",
            "name": "Zoë Müller – Ωμέγα Привет",
            "kind": "customer",
            "emails": ["zoe@example.test"],
            "address": ["Łódź, ul. Żółta 3", "Ἀθῆναι"],
        }
    ]
    lines = [
        {"description": "“Quoted” widget – €-priced", "quantity": 2, "unit_price": "12.50"},
        {"description": "Сервис Ωμέγα", "quantity": 1, "unit_price": "1"},
    ]
    folder = write_folder(tmp_path, {"u": invoice(contact_id="c", lines=lines)}, contacts)
    library = load_folder(folder)
    [text] = pages_text(render_pdf(library.documents["u"], library, creation_date=FIXED))
    for expected in (
        "Zoë Müller – Ωμέγα Привет",
        "Łódź, ul. Żółta 3",
        "“Quoted” widget – €-priced",
        "Сервис Ωμέγα",
        "€26.00",
    ):
        assert expected in text


def test_long_invoice_breaks_across_pages_with_repeated_header(samples: Library) -> None:
    doc = samples.documents["INV-2026-0145"]
    assert isinstance(doc, Invoice) and len(doc.lines) >= 40
    texts = pages_text(render_pdf(doc, samples, creation_date=FIXED))
    count = len(texts)
    assert count >= 2
    for number, text in enumerate(texts, 1):
        assert f"Page {number} of {count}" in text
        assert re.search(r"#\s*Description\s*Qty\s*Unit\s*Unit price\s*Tax\s*Amount", text), text
    assert "continued" in texts[1]
    everything = "\n".join(texts)
    for line in doc.lines:
        assert line.description in everything
    assert "€8,623.50" in texts[-1]


def test_yen_has_no_decimals(samples: Library) -> None:
    doc = samples.documents["INV-2026-0144"]
    [text] = pages_text(render_pdf(doc, samples, creation_date=FIXED))
    assert "¥1,503,800" in text
    assert "1,370,000" in text
    assert "¥1,503,800.00" not in text


def test_statement_and_report_render(samples: Library) -> None:
    statement = samples.documents["ST-2026-11-MUELLER"]
    report = samples.documents["RPT-2026-10"]
    assert isinstance(statement, Statement) and isinstance(report, Report)
    [text] = pages_text(render_pdf(statement, samples, creation_date=FIXED))
    assert "Closing balance" in text and "€4,997.74" in text
    assert "Opening balance" in text and "€4,212.30" in text
    for entry in statement.entries:
        assert entry.description in text
    [text] = pages_text(render_pdf(report, samples, creation_date=FIXED))
    assert report.title in text
    for column in report.columns:
        assert column in text
    assert "59,078.95" in text and "Weiß & Partner Steuerberatung" in text


def test_every_sample_renders_without_fpdf_warnings(
    samples: Library, caplog: pytest.LogCaptureFixture
) -> None:
    installed = any(path.is_file() for path in pdfmod.SYSTEM_FALLBACK_FONTS)
    with caplog.at_level("WARNING"):
        for doc in samples.documents.values():
            if doc.contact_id == "yamada" and not installed:
                continue  # covered by the CJK tests
            texts = pages_text(render_pdf(doc, samples, creation_date=FIXED))
            assert doc.number in texts[0]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("fpdf")] == []


def test_a_tab_is_drawn_as_a_space(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [{"description": "Widget\tblue", "quantity": 1, "unit_price": "1"}]
    library = load_folder(write_folder(tmp_path, {"x": invoice(lines=lines, reference="a\tb")}))
    with caplog.at_level("WARNING"):
        [text] = pages_text(render_pdf(library.documents["x"], library))
    assert "Widget blue" in text and "a b" in text
    assert [r for r in caplog.records if r.name.startswith("fpdf")] == []


def test_same_input_same_bytes_and_the_creation_date_is_used(samples: Library) -> None:
    doc = samples.documents["INV-2026-0141"]
    other = samples.documents["Q-2026-0031"]
    first = render_pdf(doc, samples, creation_date=FIXED)
    render_pdf(other, samples, creation_date=FIXED)  # shared font cache in between
    pdfmod._CACHE.clear()  # and a cold cache
    again = render_pdf(doc, samples, creation_date=FIXED)
    assert first == again
    later = render_pdf(doc, samples, creation_date=FIXED + dt.timedelta(days=1))
    assert later != first
    reader = pypdf.PdfReader(io.BytesIO(first))
    assert reader.metadata is not None
    assert reader.metadata.creation_date == FIXED
    assert reader.metadata.title == "Invoice INV-2026-0141"


def test_cjk_renders_with_a_system_font_or_fails_clearly(samples: Library) -> None:
    """On a machine with a CJK font it renders; on one without (CI) the error is clear."""
    doc = samples.documents["INV-2026-0144"]
    installed = [path for path in pdfmod.SYSTEM_FALLBACK_FONTS if path.is_file()]
    if installed:
        [text] = pages_text(render_pdf(doc, samples, creation_date=FIXED))
        assert CJK_NAME in text
        assert "光学式膜厚計" in text
    else:
        with pytest.raises(MissingGlyphsError, match=r"'株' \(U\+682A\)"):
            render_pdf(doc, samples, creation_date=FIXED)


@pytest.mark.usefixtures("no_system_fonts")
def test_cjk_without_any_font_is_a_clear_error(samples: Library) -> None:
    doc = samples.documents["INV-2026-0144"]
    with pytest.raises(MissingGlyphsError) as caught:
        render_pdf(doc, samples, creation_date=FIXED)
    error = caught.value
    assert isinstance(error, ValueError)
    assert {"株", "式", "会", "社", "山", "田", "商", "事"} <= set(error.characters)
    message = str(error)
    assert "'株' (U+682A)" in message
    assert "fallback_font" in message and "fonts-ipaexfont-gothic" in message
    assert "fonts-noto-cjk" in message


@pytest.mark.usefixtures("no_system_fonts")
def test_configured_fallback_font_that_has_the_glyphs_is_used(
    samples: Library, tmp_path: Path
) -> None:
    doc = samples.documents["INV-2026-0144"]
    data = str(doc.model_dump()) + str(samples.contacts["yamada"].model_dump())
    needed = "".join(sorted({c for c in data if ord(c) > 0x2FFF}))
    font = make_font(tmp_path / "cjk.ttf", needed)
    [text] = pages_text(render_pdf(doc, samples, fallback_font=str(font), creation_date=FIXED))
    assert CJK_NAME in text
    assert "校正サービス" in text
    assert "¥1,503,800" in text  # DejaVu still draws everything it can


@pytest.mark.usefixtures("no_system_fonts")
def test_configured_fallback_font_lacking_the_glyph_names_it(
    samples: Library, tmp_path: Path
) -> None:
    doc = samples.documents["INV-2026-0144"]
    font = make_font(tmp_path / "partial.ttf", "山田")  # no 株
    with pytest.raises(MissingGlyphsError) as caught:
        render_pdf(doc, samples, fallback_font=str(font), creation_date=FIXED)
    assert "株" in caught.value.characters
    assert "山" not in caught.value.characters
    assert "partial.ttf" in str(caught.value)


def test_missing_configured_font_file_is_a_clear_error(samples: Library, tmp_path: Path) -> None:
    doc = samples.documents["INV-2026-0144"]
    with pytest.raises(ValueError, match="nothing.ttf.*is not a file"):
        render_pdf(doc, samples, fallback_font=str(tmp_path / "nothing.ttf"))


def test_a_character_no_font_has_is_named_before_any_pdf(tmp_path: Path) -> None:
    lines = [{"description": "Widget \U0010fffd", "quantity": 1, "unit_price": "1"}]
    folder = write_folder(tmp_path, {"x": invoice(lines=lines)})
    library = load_folder(folder)
    with pytest.raises(MissingGlyphsError, match=r"U\+10FFFD"):
        render_pdf(library.documents["x"], library)


def test_pdf_filename() -> None:
    folder_docs = {
        "a": invoice(number="INV-0042"),
        "b": invoice(number="2026/11 #7"),
    }
    assert pdf_filename(_parse(folder_docs["a"])) == "Invoice-INV-0042.pdf"
    assert pdf_filename(_parse(folder_docs["b"])) == "Invoice-2026-11-7.pdf"
    order = _parse(
        {
            "kind": "purchase_order",
            "number": "PO-1",
            "contact_id": "parts",
            "issue_date": "2026-11-01",
            "currency": "EUR",
            "lines": [{"description": "x", "quantity": 1, "unit_price": 1}],
        }
    )
    assert pdf_filename(order) == "Purchase-order-PO-1.pdf"


def _parse(data: dict[str, object]) -> Invoice:
    from tui.documents import parse_document

    doc = parse_document(data, "id")
    assert not isinstance(doc, Report | Statement)
    return doc  # type: ignore[return-value]


def test_renders_in_threads_match_sequential_renders(samples: Library) -> None:
    """The font cache is shared across threads (batch sends may render in a worker)."""
    from concurrent.futures import ThreadPoolExecutor

    # Several documents, so that outputs overlap.
    ids = ["INV-2026-0141", "Q-2026-0031", "INV-2026-0141", "PO-2026-0077"] * 5
    pdfmod._CACHE.clear()
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(
            pool.map(lambda i: render_pdf(samples.documents[i], samples, creation_date=FIXED), ids)
        )
    sequential = [render_pdf(samples.documents[i], samples, creation_date=FIXED) for i in ids]
    assert parallel == sequential


def test_cached_fonts_give_the_same_text_as_fpdf2s_own_loading(
    samples: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = samples.documents["INV-2026-0145"]
    cached = render_pdf(doc, samples, creation_date=FIXED)
    monkeypatch.setattr(pdfmod, "_CLONE_FONTS", False)
    plain = render_pdf(doc, samples, creation_date=FIXED)
    assert pages_text(cached) == pages_text(plain)
    assert len(cached) <= len(plain)


@pytest.mark.usefixtures("no_system_fonts")
def test_a_replaced_fallback_font_file_is_read_again(samples: Library, tmp_path: Path) -> None:
    doc = samples.documents["INV-2026-0144"]
    data = str(doc.model_dump()) + str(samples.contacts["yamada"].model_dump())
    needed = "".join(sorted({c for c in data if ord(c) > 0x2FFF}))
    font = make_font(tmp_path / "cjk.ttf", needed.replace("株", ""))
    with pytest.raises(MissingGlyphsError):
        render_pdf(doc, samples, fallback_font=str(font), creation_date=FIXED)
    make_font(font, needed)  # the user installs a better font under the same name
    [text] = pages_text(render_pdf(doc, samples, fallback_font=str(font), creation_date=FIXED))
    assert CJK_NAME in text


def test_a_kept_subset_font_gives_the_same_bytes_as_subsetting_again(
    samples: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents with the same glyphs reuse the subset font; the PDF is byte for byte the same."""
    ids = ["INV-2026-0141", "Q-2026-0031", "PO-2026-0077"]
    used: list[bytes] = []
    original_save = pdfmod._SubsetFont.save

    def counting_save(
        self: pdfmod._SubsetFont, file: Any, reorderTables: bool | None = True
    ) -> None:  # noqa: N803
        used.append(self.kept.data)
        original_save(self, file, reorderTables)

    monkeypatch.setattr(pdfmod._SubsetFont, "save", counting_save)
    monkeypatch.setattr(pdfmod._SUBSETS, "limit", 4)
    monkeypatch.setattr(pdfmod._FONT_OBJECTS, "limit", 0)  # kept font objects skip subsetting
    pdfmod._FONT_OBJECTS.clear()
    pdfmod._SUBSETS.clear()
    fresh = [render_pdf(samples.documents[i], samples, creation_date=FIXED) for i in ids]
    assert used == []  # every document had other glyphs: each subset made anew
    assert len(pdfmod._SUBSETS) == 4  # 6 subsets (2 fonts × 3 documents), the last 4 kept
    again = [render_pdf(samples.documents[i], samples, creation_date=FIXED) for i in ids[1:]]
    assert len(used) == 4  # regular and bold of the two documents still kept
    assert again == fresh[1:]
    assert pages_text(again[0]) == pages_text(fresh[1])
    # A document whose subsets were dropped is subset anew, with the same result.
    assert render_pdf(samples.documents[ids[0]], samples, creation_date=FIXED) == fresh[0]
    assert len(used) == 4
    assert len(pdfmod._SUBSETS) == 4


def test_long_cells_wrap_in_their_column_and_rows_move_to_the_next_page_whole(
    samples: Library,
) -> None:
    doc = samples.documents["INV-2026-0145"]
    assert isinstance(doc, Invoice)
    long = "Calibration on site, with travel between the two plants and a written report " * 3
    lines = list(doc.lines)
    for index in (1, 20, 21, 22, 23):
        lines[index] = lines[index].model_copy(update={"description": f"L{index:02d} {long}"})
    lines[3] = lines[3].model_copy(update={"unit": "hours and minutes"})
    texts = pages_text(
        render_pdf(doc.model_copy(update={"lines": lines}), samples, creation_date=FIXED)
    )
    assert len(texts) >= 2
    for number, text in enumerate(texts, 1):
        assert f"Page {number} of {len(texts)}" in text
        if "Calibration" in text:  # a page with table rows starts with the heading row
            assert re.search(r"#\s*Description\s*Qty\s*Unit\s*Unit price\s*Tax\s*Amount", text)
    words = " ".join(long.split())
    for index in (1, 20, 21, 22, 23):
        # A wrapped description is on one page only, whole, in reading order.
        [page] = [t for t in texts if f"L{index:02d} Calibration on site" in t]
        start = page.index(f"L{index:02d} Calibration on site")
        assert " ".join(page[start:].split()[1:]).startswith(words)
    assert "minut" in texts[0] and "hours" in texts[0]
    assert "€8,623.50" not in texts[0] and "€8,623.50" in texts[-1]


def test_a_kept_subset_subset_to_fewer_glyphs_is_saved_with_those_glyphs(
    samples: Library,
) -> None:
    """Safety net: if fpdf2 ever asked a kept subset for fewer glyphs, they are subset for real."""
    from fontTools import subset as ftsubset
    from fontTools import ttLib

    pdfmod._FONT_OBJECTS.clear()
    pdfmod._SUBSETS.clear()
    render_pdf(samples.documents["INV-2026-0141"], samples, creation_date=FIXED)
    kept = next(iter(pdfmod._SUBSETS.values()))
    font = pdfmod._SubsetFont(kept)
    wanted = ["A", "B", "zero"]
    subsetter = ftsubset.Subsetter(ftsubset.Options(notdef_outline=True, recommended_glyphs=True))
    subsetter.populate(glyphs=wanted)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    assert out.getvalue() != kept.data
    saved = ttLib.TTFont(io.BytesIO(out.getvalue()))
    assert sorted(saved.getGlyphOrder()[4:]) == ["A", "B", "zero"]  # after .notdef and gids 1-3
    assert set(saved["glyf"].keys()) == set(saved.getGlyphOrder())
    assert {chr(c) for c in saved.getBestCmap()} >= {"A", "B", "0"}


def test_measured_widths_are_fpdf2s_own(samples: Library) -> None:
    """The direct width sum gives exactly fpdf2's get_string_width, or defers to it."""
    pdf = pdfmod._Pdf(samples.documents["INV-2026-0141"], samples.business)
    pdfmod._add_font(pdf, "DejaVu", "", pdfmod.REGULAR_FONT)
    pdfmod._add_font(pdf, "DejaVu", "B", pdfmod.BOLD_FONT)
    pdf.add_page()
    texts = ["", "Widget", "€4,997.74", "Zoë Müller – Ωμέγα Привет", "“quoted” · 19 %", "x" * 300]
    texts += ["Page 1 of {nb}", "株式会社"]  # the page alias and a missing glyph: fpdf2's path
    for style in ("", "B"):
        for size in (7, 8.5, 15):
            pdf.set_font("DejaVu", style, size)
            for text in texts:
                assert pdf.width_of(text) == pdf.get_string_width(text), (style, size, text)


def test_documents_rendered_at_once_share_no_font_state_fpdf2_writes(samples: Library) -> None:
    """fpdf2 numbers and names a font's descriptor while writing a document.

    Shared between clones, two documents written at once in threads took each other's
    object ids (KeyError in the xref table, 1 in ~50 documents in a batch).
    """
    doc = samples.documents["INV-2026-0141"]
    first, second = (pdfmod._Pdf(doc, samples.business) for _ in range(2))
    for pdf in (first, second):
        pdfmod._add_font(pdf, "DejaVu", "", pdfmod.REGULAR_FONT)
    one, two = first.fonts["dejavu"], second.fonts["dejavu"]
    assert isinstance(one, TTFFont) and isinstance(two, TTFFont)
    assert one.desc is not two.desc
    assert one.cw is not two.cw and one.subset is not two.subset


def test_kept_font_objects_give_the_same_bytes_as_fpdf2_writing_the_fonts(
    samples: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A font whose subset map was seen is written from what fpdf2 wrote then: same bytes.

    The numbers use the same new glyphs in another order (other character codes in the
    regular font, whose subset maps are then kept apart).
    """
    from fpdf.output import OutputProducer

    base = samples.documents["INV-2026-0141"]
    docs = [base.model_copy(update={"number": n}) for n in ("INV-ΩЖ", "INV-ЖΩ", "INV-ΩЖ")]
    ids = ["INV-2026-0145", "Q-2026-0031"]
    if any(path.is_file() for path in pdfmod.SYSTEM_FALLBACK_FONTS):
        ids.append("INV-2026-0144")  # with a third, fallback font
    docs += [samples.documents[i] for i in ids]
    written_by_fpdf2: list[str] = []
    original = OutputProducer._add_fonts

    def counting(self: OutputProducer, *args: Any) -> Any:
        written_by_fpdf2.extend(font.fontkey for font in self.fpdf.fonts.values())
        return original(self, *args)

    monkeypatch.setattr(OutputProducer, "_add_fonts", counting)
    pdfmod._FONT_OBJECTS.clear()
    kept = [render_pdf(doc, samples, creation_date=FIXED) for doc in docs]
    # The second number has its own regular font (its bold text is the first's); the
    # repeated first document is written from what was kept; the others are new.
    assert written_by_fpdf2[:3] == ["dejavu", "dejavuB", "dejavu"]
    assert written_by_fpdf2[3:7] == ["dejavu", "dejavuB", "dejavu", "dejavuB"]
    assert written_by_fpdf2[7:] in ([], ["dejavu", "dejavuB", "fallback0"])
    assert len(pdfmod._FONT_OBJECTS) == len(written_by_fpdf2)
    assert kept[0] == kept[2] and kept[0] != kept[1]

    written_by_fpdf2.clear()
    again = [render_pdf(doc, samples, creation_date=FIXED) for doc in reversed(docs)]
    assert written_by_fpdf2 == []  # no subsetting, nothing compressed again
    assert again[::-1] == kept

    # The same documents with nothing kept at all: fpdf2 writes every font, same bytes.
    monkeypatch.setattr(pdfmod._FONT_OBJECTS, "limit", 0)
    pdfmod._FONT_OBJECTS.clear()
    pdfmod._SUBSETS.clear()
    fresh = [render_pdf(doc, samples, creation_date=FIXED) for doc in docs]
    assert fresh == kept
    assert len(pdfmod._FONT_OBJECTS) == 0
    assert pages_text(fresh[1]) == pages_text(kept[1])


def test_kept_font_objects_are_bounded(samples: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdfmod._FONT_OBJECTS, "limit", 3)
    pdfmod._FONT_OBJECTS.clear()
    base = samples.documents["INV-2026-0141"]
    for number in ("INV-Ω", "INV-ΩЖ", "INV-ΩЖλ"):
        render_pdf(base.model_copy(update={"number": number}), samples, creation_date=FIXED)
    # Four subset maps (three regular, one bold shared by the three): the last 3 are kept.
    assert len(pdfmod._FONT_OBJECTS) == 3
    kept = list(pdfmod._FONT_OBJECTS)
    render_pdf(base.model_copy(update={"number": "INV-Ω"}), samples, creation_date=FIXED)
    # The least recently used (INV-ΩЖ's regular font; the bold one was used since) made room.
    assert len(pdfmod._FONT_OBJECTS) == 3
    assert kept[0] not in pdfmod._FONT_OBJECTS and set(kept[1:]) <= set(pdfmod._FONT_OBJECTS)


def test_lines_written_directly_are_the_bytes_fpdf2s_cell_writes(
    samples: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_Pdf.line_of`` writes one-line cells itself; the PDFs are byte for byte fpdf2's.

    Every kind of document, a two-page one (fonts set again on a new page, the heading
    row repeated), colours changing between cells, left, right and centred text, and a
    document with a fallback font (fpdf2's path) in the same process.
    """
    ids = sorted(samples.documents)
    base = samples.documents["INV-2026-0141"]
    assert isinstance(base, Invoice)
    wrapped = base.model_copy(update={"notes": ["Thanks – “quoted” Ωμέγα Привет (a) \\ b"]})
    docs = [samples.documents[i] for i in ids] + [wrapped]
    installed = any(path.is_file() for path in pdfmod.SYSTEM_FALLBACK_FONTS)
    cjk = samples.documents["INV-2026-0144"]
    if not installed:
        docs.remove(cjk)  # needs a CJK font
    direct = [render_pdf(doc, samples, creation_date=FIXED) for doc in docs]

    through_cell: list[str] = []

    def by_fpdf2(
        self: pdfmod._Pdf, w: float, h: float, text: str, align: str, next_line: bool = False
    ) -> None:
        through_cell.append(text)
        new = {"new_x": "LMARGIN", "new_y": "NEXT"} if next_line else {}
        self.cell(w, h, text, align=align, **new)  # type: ignore[arg-type]

    monkeypatch.setattr(pdfmod._Pdf, "line_of", by_fpdf2)
    plain = [render_pdf(doc, samples, creation_date=FIXED) for doc in docs]
    assert len(through_cell) > 100 * len(docs) // 2
    for doc, one, other in zip(docs, direct, plain, strict=True):
        assert one == other, doc.id

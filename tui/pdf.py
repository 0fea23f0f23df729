"""Render a document to PDF with fpdf2: business header, line table, totals, page n of m.

Fonts. DejaVu Sans (regular and bold, shipped in ``tui/fonts`` with its licence)
prints €, “quotes”, Müller, Zoë, Ωμέγα and Привет the same on every machine.
Characters DejaVu lacks (CJK) come from a fallback font: the one named in the
settings (``[documents] fallback_font``), else a known system font (IPAex,
Noto CJK, Droid Sans Fallback), loaded only when the document needs it.
fpdf2 only logs a warning for a character no font has and prints a blank, so
every string drawn is recorded and checked against the fonts' character maps
before any byte of PDF is produced: a gap raises ``MissingGlyphsError``.

Speed. Parsing a font costs tens of milliseconds per document. The parsed font
(character map, widths, descriptor) is kept per process and cloned into each
new ``FPDF``; only the fontTools object, which subsetting mutates, is reopened
from cached bytes each time (lazily, so it costs little). An FPDF is never
deep-copied (that breaks subsetting later, FACTS.md).

Subsetting the font to the glyphs a document uses is the other per-document cost
(fontTools walks all 6,000 glyphs of DejaVu). Its result depends only on the font
and the set of glyphs, so the subset font file is kept per process (a bounded
number of them) and handed to fpdf2 again for the next document that uses exactly
the same glyphs: fpdf2 then subsets a font that is already that subset (cheap) and
embeds the kept bytes, which are the bytes it produced the first time.

Writing the fonts was next (~3.5 ms a font): fpdf2 subsets, builds a 128 KB
CIDToGIDMap, a ToUnicode map and a widths array, and compresses the map and the
subset font, for every document. All of it follows from the font and the document's
subset map (which code stands for which glyph), so what fpdf2 wrote is kept per
process (a bounded number) and a document with the same subset map gets the same
objects again without subsetting or compressing anything (``_Output``).

Layout is the third cost: fpdf2's line breaker goes character by character in
Python, re-measuring the line at each one. Tables are laid out here (a cell that
fits on one line is drawn with ``cell()``; only longer ones are wrapped), one-line
paragraphs skip the breaker, and string widths of our cached fonts are summed
directly (``_Pdf.width_of``, the same float as ``get_string_width``). One-line cells
of plain text are written directly too (``_Pdf.line_of``: the operators fpdf2's
``cell()`` writes, without its styled fragments; byte-identical, tested). The pages look
exactly as with fpdf2's ``table()`` and ``multi_cell()`` (compared rasterised).

Output is deterministic: pass ``creation_date`` and the same input gives the
same bytes.

This is a service module: no Textual import (DESIGN.md section 8).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

from fontTools import subset as ftsubset
from fontTools import ttLib
from fontTools.ttLib.tables._g_l_y_f import Glyph as _Glyph
from fpdf import FPDF
from fpdf.enums import CharVPos, TextMode
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import (
    CIDSystemInfo,
    OutputProducer,
    PDFExtGState,
    PDFFont,
    PDFFontStream,
    PDFType3Font,
    PDFXObject,
)
from fpdf.pattern import Pattern
from fpdf.syntax import Name, PDFArray, PDFContentStream

from tui.documents import (
    AnyDocument,
    Business,
    Contact,
    Invoice,
    Library,
    PurchaseOrder,
    Quote,
    Report,
    Statement,
    format_amount,
    format_money,
    format_quantity,
)

FONT_DIR = Path(__file__).with_name("fonts")
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"

SYSTEM_FALLBACK_FONTS: tuple[Path, ...] = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
)
"""Known CJK fonts, tried in order when the document needs one (Debian paths)."""

FONT_HELP = (
    "set [documents] fallback_font in the settings to a TTF/OTF font that has them, "
    "or install a CJK font (Debian/Ubuntu: apt install fonts-ipaexfont-gothic, "
    "or fonts-noto-cjk)"
)

# Tables fpdf2 never uses (it does no text shaping here): dropping them before
# subsetting keeps the embedded font small and the subsetting fast.
_UNUSED_TABLES = ("GSUB", "GPOS", "GDEF", "kern", "MATH", "FFTM", "JSTF", "BASE")

_MONTHS = (
    "January February March April May June July August September October November December"
).split()

_INK = (33, 37, 41)
_MUTED = (108, 117, 125)
_RULE = (206, 212, 218)
_SHADE = (236, 239, 243)


class MissingGlyphsError(ValueError):
    """Characters that no available font can show; no PDF was produced."""

    def __init__(self, characters: Sequence[str], fonts: Sequence[str]) -> None:
        self.characters = list(characters)
        self.fonts = list(fonts)
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in self.characters[:12])
        more = len(self.characters) - 12
        if more > 0:
            shown += f" and {more} more"
        tried = ", ".join(self.fonts)
        count = len(self.characters)
        noun = "character" if count == 1 else "characters"
        super().__init__(
            f"no font can show {count} {noun}: {shown} (fonts tried: {tried}); {FONT_HELP}"
        )


# --- font cache ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FontTemplate:
    """A font parsed once: fpdf2's metrics object, its cmap and the slimmed font bytes."""

    font: TTFFont
    cmap: frozenset[int]
    data: bytes
    """Empty when the font cannot be cloned (CFF outlines, colour or compressed fonts)."""
    glyph_order: tuple[str, ...]
    """The original glyph names: ``data`` has none (its ``post`` table is format 3)."""
    key: tuple[str, str, int, int]
    """Which file (path, style, mtime, size): kept subsets are per template."""
    tables: _SharedTables | None = None
    """The big tables of ``data``, decoded once (None when ``data`` is empty)."""


@dataclass(frozen=True)
class _SharedTables:
    """What subsetting would decode from ``data`` for every document, decoded once.

    Read-only. Each document's glyf table hands out private glyphs (``_GlyphCopies``),
    re-encoded once per process the way fontTools encodes them (``optimized``), so
    the subset is as small as fpdf2's own and nothing a document changes is shared.
    """

    glyphs: dict[str, Any]
    metrics: dict[str, tuple[int, int]]
    cmap: Any
    optimized: dict[str, bytes] = field(default_factory=dict)
    """Glyph name -> its data as fontTools compiles it (filled as glyphs are used)."""


class _GlyphCopies(dict[str, Any]):
    """A document's ``glyf.glyphs``: each lookup returns a private copy of the glyph.

    Subsetting rewrites the component ids of composite glyphs in place, and trims
    every glyph it keeps; it reaches the glyphs only through lookups, so the
    shared ones are never touched.
    """

    def __init__(self, shared: _SharedTables, table: Any) -> None:
        super().__init__(shared.glyphs)
        self.shared = shared
        self.table = table

    def __getitem__(self, name: str) -> Any:
        data = self.shared.optimized.get(name)
        if data is None:
            source = super().__getitem__(name)
            data = getattr(source, "data", b"")
            if data:
                glyph = _Glyph(data)
                glyph.expand(self.table)
                # recalcBBoxes=True: compiled as fpdf2's own path would (optimized size).
                data = bytes(glyph.compile(self.table, True))
            self.shared.optimized[name] = data
        copy = _Glyph()
        copy.data = data
        return copy


class _DocumentFont(ttLib.TTFont):  # type: ignore[misc]  # fontTools is untyped
    """A document's own fontTools object; when fpdf2 saves its subset, the file is kept."""

    subset_key: tuple[Any, ...] | None = None

    def save(self, file: Any, reorderTables: bool | None = True) -> None:  # noqa: N803
        """Write the font (the subset, when fpdf2 calls this) and remember it by its glyphs."""
        buffer = io.BytesIO()
        super().save(buffer, reorderTables)
        data = buffer.getvalue()
        if self.subset_key is not None:
            _SUBSETS.put(self.subset_key, _Subset.of(data, tuple(self.getGlyphOrder())))
        file.write(data)


_SKELETON_TABLES = ("head", "maxp", "loca", "glyf")
"""What subsetting a kept subset needs to keep the same glyphs: their ids and components."""


@dataclass(frozen=True)
class _Subset:
    """A subset font file as fpdf2 embedded it, with its glyph names in glyph id order."""

    data: bytes
    glyph_order: tuple[str, ...]
    skeleton: bytes
    """The same font with only the outline tables: what fpdf2 subsets again (cheaply)."""

    @classmethod
    def of(cls, data: bytes, glyph_order: tuple[str, ...]) -> _Subset:
        font = ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, recalcBBoxes=False)
        font.setGlyphOrder(list(glyph_order))
        for tag in list(font.keys()):
            if tag != "GlyphOrder" and tag not in _SKELETON_TABLES:
                del font[tag]
        buffer = io.BytesIO()
        font.save(buffer)
        return cls(data, glyph_order, buffer.getvalue())


class _SubsetFont(ttLib.TTFont):  # type: ignore[misc]  # fontTools is untyped
    """A kept subset, handed to fpdf2 in place of the whole font.

    fpdf2 subsets its skeleton (glyph outlines only) to the same glyphs: all of them,
    so glyph ids and names stay as they are; then saves it: the kept bytes are
    written, and the document is the same as if the whole font had been subset again.
    """

    def __init__(self, subset: _Subset) -> None:
        super().__init__(
            io.BytesIO(subset.skeleton), recalcTimestamp=False, recalcBBoxes=False, lazy=True
        )
        self.setGlyphOrder(list(subset.glyph_order))
        self.kept = subset

    def save(self, file: Any, reorderTables: bool | None = True) -> None:  # noqa: N803
        """The kept bytes; if subsetting kept fewer glyphs, the kept font subset to them."""
        glyphs = self.getGlyphOrder()
        if tuple(glyphs) == self.kept.glyph_order:
            file.write(self.kept.data)
            return
        font = ttLib.TTFont(io.BytesIO(self.kept.data), recalcTimestamp=False, lazy=True)
        font.setGlyphOrder(list(self.kept.glyph_order))
        subsetter = ftsubset.Subsetter(
            ftsubset.Options(notdef_outline=True, recommended_glyphs=True)
        )
        subsetter.populate(glyphs=glyphs)
        subsetter.subset(font)
        font.save(file, reorderTables)


_V = TypeVar("_V")


class _Kept(Generic[_V]):
    """The most recently used values by key, at most ``limit`` of them; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._values: OrderedDict[tuple[Any, ...], _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> _V | None:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: _V) -> None:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.limit:
                self._values.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def values(self) -> list[_V]:
        with self._lock:
            return list(self._values.values())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        with self._lock:
            return iter(list(self._values))


_SUBSETS: _Kept[_Subset] = _Kept(64)
"""Kept subset fonts (each some tens of KB): the most recently used are kept."""


@dataclass(frozen=True)
class _FontObjects:
    """What fpdf2 wrote for one font of one document, apart from the object ids.

    Everything in it follows from the font and the document's subset map (which
    character code stands for which glyph): the embedded subset font (compressed),
    the 128 KB CIDToGIDMap (compressed), the ToUnicode map and the widths array.
    fpdf2 rebuilds and compresses all of it for every document (~3.5 ms a font).
    """

    font_file: bytes
    font_file_length: int
    cid_to_gid: bytes
    to_unicode: bytes
    widths: str | None

    @classmethod
    def of(cls, composite: Any) -> _FontObjects | None:
        """Read back from the objects fpdf2 made; None if they are not the expected shape."""
        try:
            (cid_font,) = composite.descendant_fonts
            font_file = cid_font.font_descriptor.font_file2
            cid_to_gid = cid_font.c_i_d_to_g_i_d_map
            to_unicode = composite.to_unicode
        except (AttributeError, TypeError, ValueError):
            return None
        if (
            composite.encoding != "Identity-H"
            or cid_font.subtype != "CIDFontType2"
            or cid_to_gid.filter != "FlateDecode"
            or font_file.filter != "FlateDecode"
            or to_unicode.filter is not None
        ):
            return None
        return cls(
            bytes(font_file.content_stream()),
            font_file.length1,
            bytes(cid_to_gid.content_stream()),
            bytes(to_unicode.content_stream()),
            cid_font.w,
        )


def _subset_map_key(font: TTFFont) -> tuple[tuple[int, int, Any, str, int], ...]:
    """The document's subset map of a font, in full: what ``_FontObjects`` depends on."""
    return tuple(
        (code, glyph.glyph_id, glyph.unicode, glyph.glyph_name, glyph.glyph_width)
        for glyph, code in font.subset.items()
        if glyph is not None
    )


_FONT_OBJECTS: _Kept[_FontObjects] = _Kept(64)
"""Kept font objects (each some tens of KB): the most recently used are kept.

In a batch of invoices from one business, a few dozen subset maps cover hundreds of
documents (the order in which a document first uses each glyph decides its codes).
"""


def _compressed_stream(data: bytes, stream: PDFContentStream | None = None) -> PDFContentStream:
    """A FlateDecode stream object holding ``data``, already compressed."""
    if stream is None:
        stream = PDFContentStream(contents=b"", compress=False)
    stream._contents = data
    stream.filter = Name("FlateDecode")
    stream.length = len(data)
    return stream


class _Output(OutputProducer):
    """fpdf2's output, with each cached font given what was kept for it.

    A font whose subset map was seen before (``_FONT_OBJECTS``) is written from the
    kept objects, without subsetting or compressing anything: the same objects in
    the same order, with the same content, as fpdf2's ``_add_fonts`` writes. Other
    fonts go through fpdf2, with the kept subset font when there is one, and what
    fpdf2 wrote for them is kept.

    The glyphs a document uses are known only here: the last footer is drawn by
    ``output()`` just before this is created.
    """

    def __init__(self, fpdf: FPDF) -> None:
        self.kept_objects: dict[int, _FontObjects] = {}
        self.objects_keys: dict[int, tuple[Any, ...]] = {}
        templates: dict[str, _FontTemplate] = getattr(fpdf, "templates", {})
        compliant = getattr(fpdf, "_compliance", None) is not None
        for fontkey, template in templates.items():
            font = fpdf.fonts[fontkey]
            assert isinstance(font, TTFFont)
            if not compliant and not font.missing_glyphs:
                objects_key = (template.key, _subset_map_key(font))
                objects = _FONT_OBJECTS.get(objects_key)
                if objects is not None:
                    self.kept_objects[font.i] = objects
                    continue  # nothing to subset: no fontTools object needed
                self.objects_keys[font.i] = objects_key
            key = (template.key, frozenset(font.subset.get_all_glyph_names()))
            kept = _SUBSETS.get(key)
            if kept is None:
                ttfont = _fresh_ttfont(template)
                ttfont.subset_key = key
                font.ttfont = ttfont
            else:
                font.ttfont = _SubsetFont(kept)
        super().__init__(fpdf)

    def _add_fonts(
        self,
        image_objects_per_index: dict[int, PDFXObject],
        gfxstate_objs_per_name: dict[str, PDFExtGState],
        pattern_objs_per_name: dict[str, Pattern],
    ) -> dict[int, PDFFont | PDFType3Font]:
        """fpdf2's ``_add_fonts``, one font at a time, kept fonts written here."""
        if not self.kept_objects and not self.objects_keys:
            return super()._add_fonts(
                image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name
            )
        catalog = self.fpdf._resource_catalog
        fonts = catalog.font_registry
        written: dict[int, PDFFont | PDFType3Font] = {}
        try:
            for fontkey, font in sorted(fonts.items(), key=lambda item: item[1].i):
                kept = self.kept_objects.get(font.i)
                if kept is not None:
                    assert isinstance(font, TTFFont)
                    written[font.i] = self._add_kept_font(font, kept)
                    continue
                # fpdf2's own code, for this font only (in the same order as all at once).
                catalog.font_registry = {fontkey: font}
                done = super()._add_fonts(
                    image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name
                )
                written.update(done)
                objects_key = self.objects_keys.get(font.i)
                objects = _FontObjects.of(done[font.i]) if objects_key is not None else None
                if objects_key is not None and objects is not None:
                    _FONT_OBJECTS.put(objects_key, objects)
        finally:
            catalog.font_registry = fonts
        return written

    def _add_kept_font(self, font: TTFFont, kept: _FontObjects) -> PDFFont:
        """The objects fpdf2's ``_add_fonts`` makes for a TrueType font, from ``kept``."""
        fontname = f"MPDFAA+{font.name}"
        composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(
            subtype="CIDFontType2",
            base_font=fontname,
            d_w=font.desc.missing_width,
            w=kept.widths,
        )
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])
        to_unicode = PDFContentStream(contents=kept.to_unicode)
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode
        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info
        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor
        cid_to_gid = _compressed_stream(kept.cid_to_gid)
        self._add_pdf_obj(cid_to_gid, "fonts")
        cid_font.c_i_d_to_g_i_d_map = cid_to_gid
        font_file = _compressed_stream(kept.font_file, PDFFontStream(contents=b""))
        font_file.length1 = kept.font_file_length  # type: ignore[attr-defined]
        self._add_pdf_obj(font_file, "fonts")
        descriptor.font_file2 = font_file  # type: ignore[attr-defined]
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        font.close()
        return composite


_CACHE: dict[tuple[str, str, int, int], _FontTemplate] = {}
_CACHE_LOCK = threading.Lock()
_CLONE_FONTS = True
"""Off: every document calls fpdf2's own ``add_font`` (the tests compare both paths)."""


def _template(path: Path, style: str) -> _FontTemplate:
    """The parsed font, once per process (and again if the file changes)."""
    stat = path.stat()
    key = (str(path), style, stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        if key not in _CACHE:
            font = TTFFont(FPDF(), path, f"template{style}", style)
            glyph_order = tuple(font.ttfont.getGlyphOrder())
            # The metrics are read; every clone gets its own fontTools object.
            font.ttfont.close()
            clonable = not font.is_cff and not font.color_font and not font.is_compressed
            data = _slim_font(path) if clonable else b""
            tables = _decode_tables(data, glyph_order) if data else None
            _CACHE[key] = _FontTemplate(font, frozenset(font.cmap), data, glyph_order, key, tables)
        return _CACHE[key]


def _slim_font(path: Path) -> bytes:
    """The font cut down to what fpdf2's subsetting reads, with the same glyphs and glyph ids.

    Dropped: the tables fpdf2 does not use, every cmap subtable but one Unicode map,
    and the glyph names (``post`` format 3: decoding 6,000 names cost more than the
    rest of the subsetting; each clone is given the names from the template instead).
    The metrics parsed from the original file still apply, and subsetting per
    document has less to parse.
    """
    buffer = io.BytesIO()
    with ttLib.TTFont(str(path), recalcTimestamp=False, recalcBBoxes=False, lazy=True) as font:
        for tag in _UNUSED_TABLES:
            if tag in font:
                del font[tag]
        cmap = font["cmap"]
        unicode_maps = [t for t in cmap.tables if (t.platformID, t.platEncID) in {(3, 1), (3, 10)}]
        # The full map (3, 10) when there is one, else the BMP map.
        unicode_maps.sort(key=lambda t: t.platEncID, reverse=True)
        cmap.tables = unicode_maps[:1]
        if "post" in font:
            font["post"].formatType = 3.0
        font.save(buffer)
    return buffer.getvalue()


def _decode_tables(data: bytes, glyph_order: Sequence[str]) -> _SharedTables | None:
    """glyf, hmtx and cmap of the slim font, decoded; None if it has no TrueType outlines."""
    font = ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
    font.setGlyphOrder(list(glyph_order))
    if "glyf" not in font or "hmtx" not in font or "cmap" not in font:
        return None
    (cmap,) = font["cmap"].tables
    cmap.ensureDecompiled()
    return _SharedTables(dict(font["glyf"].glyphs), dict(font["hmtx"].metrics), cmap)


def _fresh_ttfont(template: _FontTemplate) -> _DocumentFont:
    """A fontTools object for one document to subset (subsetting mutates it).

    ``recalcBBoxes=False``: the kept glyphs are written as they are (already encoded
    by ``_GlyphCopies``), not decoded and encoded again for every document.
    """
    ttfont = _DocumentFont(
        io.BytesIO(template.data), recalcTimestamp=False, recalcBBoxes=False, lazy=True
    )
    ttfont.setGlyphOrder(list(template.glyph_order))
    shared = template.tables
    if shared is None:
        return ttfont
    glyf = ttLib.newTable("glyf")
    glyf.glyphOrder = list(template.glyph_order)
    glyf._reverseGlyphOrder = {}
    glyf.glyphs = _GlyphCopies(shared, glyf)
    ttfont.tables["glyf"] = glyf
    hmtx = ttLib.newTable("hmtx")
    hmtx.metrics = dict(shared.metrics)
    ttfont.tables["hmtx"] = hmtx
    cmap = ttLib.newTable("cmap")
    cmap.tableVersion = 0
    subtable = copy.copy(shared.cmap)
    subtable.cmap = dict(shared.cmap.cmap)
    cmap.tables = [subtable]
    ttfont.tables["cmap"] = cmap
    return ttfont


def _add_font(pdf: _Pdf, family: str, style: str, path: Path) -> None:
    """``pdf.add_font`` with the parsing done once per process."""
    fontkey = f"{family.lower()}{style}"
    template = _template(path, style)
    if not template.data or not _CLONE_FONTS:
        pdf.add_font(family, style, str(path))
        return
    # A shallow copy shares the read-only metrics (cmap, glyph ids, descriptor); the
    # state one document changes (subset, widths cache, missing glyphs, the fontTools
    # object that subsetting mutates) is fresh.
    font = copy.copy(template.font)
    font.i = len(pdf.fonts) + 1
    font.fontkey = fontkey
    # Its own fontTools object is made when the document is written (``_Output``): the
    # layout does not read it, and a kept subset needs none. Until then it is the
    # template's, closed: anything reading it would fail loudly.
    font.ttfont = template.font.ttfont
    font.cw = template.font.cw.copy()
    # fpdf2 numbers and names the descriptor when it writes a document: one per document
    # (shared, two documents rendered at once in threads wrote each other's object ids).
    font.desc = copy.copy(template.font.desc)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    font.subset = SubsetMap(font)
    pdf.fonts[fontkey] = font
    pdf.templates[fontkey] = template


# --- formatting ------------------------------------------------------------------------------


def format_date(value: dt.date) -> str:
    """``2 November 2026`` (English month names, independent of the locale)."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def format_short_date(value: dt.date) -> str:
    """``2 Nov 2026``, for table columns."""
    return f"{value.day} {_MONTHS[value.month - 1][:3]} {value.year}"


def _format_rate(rate: Decimal) -> str:
    return f"{format_quantity(rate)} %"


def pdf_filename(doc: AnyDocument) -> str:
    """``Invoice-INV-0042.pdf``: the attachment's file name, safe on every system."""
    label = {"purchase_order": "Purchase-order"}.get(doc.kind, doc.kind.capitalize())
    number = re.sub(r"[^A-Za-z0-9._-]+", "-", doc.number).strip("-.") or doc.id
    return f"{label}-{number}.pdf"


# --- the renderer ----------------------------------------------------------------------------


class _Pdf(FPDF):
    """An A4 page with the business header and a ``Page n of m`` footer."""

    def __init__(self, doc: AnyDocument, business: Business) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc = doc
        self.business = business
        # (style, character) for every character drawn, in order of first appearance.
        self.drawn: dict[tuple[str, str], None] = {}
        # Font key -> its cached template, for the fonts added by ``_add_font``.
        self.templates: dict[str, _FontTemplate] = {}
        self.fallback_fonts: list[str] = []
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=22)
        self.alias_nb_pages()
        self.c_margin = 1.5

    def width_of(self, text: str) -> float:
        """``get_string_width(text)``, computed directly in the common case.

        fpdf2 builds styled text fragments to measure a string (~20 µs each, and a
        page measures hundreds). With one of our cached fonts, no fallback fonts, no
        text shaping, spacing or stretching and no page-count alias, its result is
        the sum of the characters' widths scaled to the font size: the same formula,
        the same float.
        """
        font = self.current_font
        if (
            isinstance(font, TTFFont)
            and font.fontkey in self.templates
            and not self.fallback_fonts
            and not self.text_shaping
            and self.char_spacing == 0
            and self.font_stretching == 100
            and self.str_alias_nb_pages not in text
        ):
            codes = list(map(ord, text))
            if all(map(font.cmap.__contains__, codes)):
                size = self.font_size_pt
                font.biggest_size_pt = max(font.biggest_size_pt, size)
                # The same additions in the same order as fpdf2's (same float), in C.
                return sum(map(font.cw.__getitem__, codes)) * size * 0.001 / self.k
        return self.get_string_width(text)

    def line_of(self, w: float, h: float, text: str, align: str, next_line: bool = False) -> None:
        """``cell(w, h, text, align=align)``, written directly in the common case.

        Then to the right of the cell, or with ``next_line`` at the left margin of the
        next line. fpdf2's ``cell()`` parses the text into styled fragments and copies
        the graphics state for each call (~40 µs; a page draws ~130 cells). With one of
        our cached fonts and plain text (no fallback font, shaping, spacing, stretching,
        underline, page alias, markdown, or page break to make), it writes exactly what
        ``_render_styled_text_line`` writes for one fragment: the same operators, the
        same numbers, the same glyph codes picked in the same order.
        """
        font = self.current_font
        if (
            not text
            or not isinstance(font, TTFFont)
            or font.fontkey not in self.templates
            or self.fallback_fonts
            or self._fallback_font_ids
            or self.text_shaping
            or self.char_spacing != 0
            or self.font_stretching != 100
            or self.underline
            or self.strikethrough
            or self.text_mode != TextMode.FILL
            or self.char_vpos != CharVPos.LINE
            or self._record_text_quad_points
            or self.str_alias_nb_pages in text
            or align not in ("L", "R", "C")
            or not self.page
            or self.will_page_break(h)
            or not all(map(font.cmap.__contains__, map(ord, text)))
        ):
            if next_line:
                self.cell(w, h, text, align=align, new_x="LMARGIN", new_y="NEXT")
            else:
                self.cell(w, h, text, align=align)
            return
        k = self.k
        width = self.width_of(text)
        if w == 0:
            w = self.w - self.r_margin - self.x
        if align == "R":
            dx = w - self.c_margin - width
        elif align == "C":
            dx = (w - width) / 2
        else:
            dx = self.c_margin
        size = self.font_size
        parts = [
            f"BT {(self.x + dx) * k:.2f} {(self.h - self.y - 0.5 * h - 0.3 * size) * k:.2f} Td"
        ]
        color = self.text_color
        recoloured = color != self.fill_color
        if recoloured:
            assert color is not None
            parts.append(color.serialize().lower())
        if not self.current_font_is_set_on_page:
            self._out(self._set_font_for_page(font, self.font_size_pt))
        pick = font.subset.pick
        mapped = "".join(chr(code) for code in map(pick, map(ord, text)) if code)
        parts.append(f"({font.escape_text(mapped)}) Tj")
        parts.append("ET")
        self._out(f"q {' '.join(parts)} Q" if recoloured else " ".join(parts))
        self._lasth = h
        if next_line:
            self.x = self.l_margin
            self.y += h
        else:
            self.x += w

    # Every string goes through here so the glyph check sees exactly what is drawn.
    def note(self, text: str) -> str:
        text = text.replace("\t", " ")  # no font has a tab glyph
        style = "B" if "B" in self.font_style else ""
        self.drawn.update(dict.fromkeys((style, char) for char in text))
        return text

    def note_cells(self, texts: Iterable[str], style: str) -> list[str]:
        cleaned = [text.replace("\t", " ") for text in texts]
        for text in cleaned:
            self.drawn.update(dict.fromkeys((style, char) for char in text))
        return cleaned

    def put(
        self,
        w: float,
        h: float,
        text: str,
        *,
        style: str = "",
        size: float = 9,
        align: str = "L",
        color: tuple[int, int, int] = _INK,
        new_line: bool = True,
    ) -> None:
        """One line of text; too long, it shrinks a little, then wraps (or is clipped)."""
        self.set_font("DejaVu", style, size)
        self.set_text_color(*color)
        text = self.note(text)
        room = (w if w > 0 else self.w - self.r_margin - self.x) - 2 * self.c_margin
        while self.width_of(text) > room and self.font_size_pt > size * 0.8:
            self.set_font_size(self.font_size_pt - 0.5)
        if new_line and self.width_of(text) > room:
            self.multi_cell(w, h, text, align=align, new_x="LMARGIN", new_y="NEXT")
            return
        while len(text) > 1 and self.width_of(text) > room:
            text = text[:-2] + "…"  # a cell that must stay one line: cut, never overlap
        self.line_of(w, h, text, align, next_line=new_line)

    def header(self) -> None:
        doc, business = self.doc, self.business
        top = self.t_margin
        if self.page_no() == 1:
            self.set_xy(self.l_margin, top)
            self.put(95, 8, business.name, style="B", size=15)
            for line in [*business.address, business.email, business.phone, business.website]:
                if line:
                    self.put(95, 4.2, line, size=8, color=_MUTED)
            bottom = self.get_y()
            self.set_xy(self.w - self.r_margin - 80, top)
            self.put(80, 8, doc.LABEL.upper(), style="B", size=15, align="R")
            self.set_x(self.w - self.r_margin - 80)
            self.put(80, 5, doc.number, size=10, align="R", color=_MUTED)
            self.set_y(max(bottom, self.get_y()) + 4)
        else:
            self.set_xy(self.l_margin, top)
            self.put(self.epw / 2, 5, business.name, style="B", size=9, new_line=False)
            self.set_x(self.l_margin + self.epw / 2)
            self.put(self.epw / 2, 5, f"{doc.title} · continued", size=9, align="R", color=_MUTED)
            self.set_y(self.get_y() + 3)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)
        business = self.business
        parts = [business.name, f"VAT ID {business.vat_id}" if business.vat_id else ""]
        left = "  ·  ".join(p for p in parts if p)
        self.put(self.epw - 28, 4, left, size=7, color=_MUTED, new_line=False)
        self.set_x(self.l_margin)
        self.put(0, 4, f"Page {self.page_no()} of {{nb}}", size=7, align="R", color=_MUTED)

    # --- blocks -------------------------------------------------------------------------------

    def party_and_facts(
        self, label: str, contact: Contact, facts: list[tuple[str, str]], emails: bool = True
    ) -> None:
        """The bill-to / supplier block on the left, key facts on the right."""
        top = self.get_y()
        self.put(90, 5, label.upper(), style="B", size=7.5, color=_MUTED)
        self.put(90, 5.5, contact.name, style="B", size=10.5)
        if contact.contact_person:
            self.put(90, 4.6, f"Attn: {contact.contact_person}", size=9)
        for line in contact.address:
            self.put(90, 4.6, line, size=9)
        if emails:
            self.put(90, 4.6, ", ".join(contact.emails), size=8.5, color=_MUTED)
        left_bottom = self.get_y()
        self.set_y(top)
        for key, value in facts:
            if not value:
                continue
            self.set_x(self.w - self.r_margin - 82)
            self.put(34, 5, key, size=8.5, color=_MUTED, new_line=False)
            self.put(48, 5, value, size=8.5, align="R")
        self.set_y(max(left_bottom, self.get_y()) + 6)

    def address_block(self, label: str, lines: Sequence[str]) -> None:
        if not lines:
            return
        self.put(0, 5, label.upper(), style="B", size=7.5, color=_MUTED)
        for line in lines:
            self.put(0, 4.6, line, size=9)
        self.ln(4)

    def table_of(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        aligns: Sequence[str],
        bold_last: bool = False,
    ) -> None:
        """A table that breaks across pages and repeats its heading row.

        Laid out here rather than with fpdf2's ``table()``, which runs its line breaker
        (Python, per character) twice over every cell: a cell that fits on one line,
        nearly all of them, is drawn with ``cell()``; only longer ones are wrapped by
        ``multi_cell()``. The look is fpdf2's ``HORIZONTAL_LINES`` table: shaded bold
        heading row, a rule between rows, padding 1.2 mm above and below (1.5 mm at the
        sides: the cell margin), text centred vertically in its row.
        """
        self.set_text_color(*_INK)
        self.set_draw_color(*_RULE)
        total = sum(widths)
        columns = [w / total * self.epw for w in widths]
        heading = _TableRow(self.note_cells(headings, "B"), "B", shaded=True)
        body = [
            _TableRow(self.note_cells(cells, "B" if bold else ""), "B" if bold else "")
            for cells, bold in ((c, bold_last and i == len(rows) - 1) for i, c in enumerate(rows))
        ]
        for row in (heading, *body):
            self._measure_row(row, columns)
        count = 1 + len(body)
        # The heading never stands alone at the foot of a page.
        needed = heading.height + (body[0].height if body else 0)
        if self.get_y() + needed > self.page_break_trigger:
            self.add_page()
        self._draw_row(heading, columns, aligns, 0, count)
        for index, row in enumerate(body, 1):
            if self.get_y() + row.height > self.page_break_trigger:
                self.add_page()
                self._draw_row(heading, columns, aligns, 0, count)
            self._draw_row(row, columns, aligns, index, count)
        self.set_x(self.l_margin)
        self.ln(4)

    def _measure_row(self, row: _TableRow, columns: Sequence[float]) -> None:
        """Each cell's lines (one unless it is too wide) and the row's height."""
        self.set_font("DejaVu", row.style, _TABLE_SIZE)
        room = [w - 2 * self.c_margin for w in columns]
        for text, width, inner in zip(row.texts, columns, room, strict=False):
            if "\n" not in text and self.width_of(text) < inner - 1e-6:
                row.lines.append(1)
            else:
                lines = self.multi_cell(width, _TABLE_LINE, text, dry_run=True, output="LINES")
                assert isinstance(lines, list)
                row.lines.append(max(1, len(lines)))
        row.height = max(row.lines, default=1) * _TABLE_LINE + 2 * _TABLE_PAD

    def _draw_row(
        self,
        row: _TableRow,
        columns: Sequence[float],
        aligns: Sequence[str],
        index: int,
        count: int,
    ) -> None:
        top, left = self.get_y(), self.l_margin
        if row.shaded:
            self.set_fill_color(*_SHADE)
            self.rect(left, top, sum(columns), row.height, style="F")
        if index > 0:
            self.line(left, top, left + sum(columns), top)
        if index < count - 1:
            self.line(left, top + row.height, left + sum(columns), top + row.height)
        self.set_font("DejaVu", row.style, _TABLE_SIZE)
        x = left
        for text, width, align, lines in zip(row.texts, columns, aligns, row.lines, strict=False):
            if text:
                dy = (row.height - lines * _TABLE_LINE) / 2
                self.set_xy(x, top + dy)
                if lines == 1:
                    self.line_of(width, _TABLE_LINE, text, align)
                else:
                    self.multi_cell(width, _TABLE_LINE, text, align=align, new_x="RIGHT")
            x += width
        self.set_xy(left, top + row.height)

    def totals(self, rows: list[tuple[str, str]], total: tuple[str, str]) -> None:
        """Right-aligned label/amount pairs, the total in bold under a rule."""
        needed = 6 * len(rows) + 12
        if self.get_y() + needed > self.page_break_trigger:
            self.add_page()
        self.set_font("DejaVu", "B", 11)
        amount_width = max(30, self.width_of(total[1]) + 4)
        self.set_font("DejaVu", "", 9)
        amount_width = max([amount_width] + [self.width_of(a) + 4 for _, a in rows])
        amount_width = min(amount_width, self.epw - 60)
        x = self.w - self.r_margin - 60 - amount_width
        for label, amount in rows:
            self.set_x(x)
            self.put(60, 5.5, label, size=9, align="R", color=_MUTED, new_line=False)
            self.put(amount_width, 5.5, amount, size=9, align="R")
        self.set_draw_color(*_INK)
        self.line(x + 30, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.ln(2.5)
        self.set_x(x)
        self.put(60, 7, total[0], style="B", size=11, align="R", new_line=False)
        self.put(amount_width, 7, total[1], style="B", size=11, align="R")
        self.ln(5)

    def paragraphs(self, title: str, lines: Sequence[str]) -> None:
        lines = [line for line in lines if line]
        if not lines:
            return
        if self.get_y() + 5 + 4.6 * len(lines) > self.page_break_trigger:
            self.add_page()
        if title:
            self.put(0, 5, title.upper(), style="B", size=7.5, color=_MUTED)
        self.set_font("DejaVu", "", 8.5)
        self.set_text_color(*_INK)
        room = self.w - self.r_margin - self.l_margin - 2 * self.c_margin
        for line in lines:
            text = self.note(line)
            if "\n" not in text and self.width_of(text) < room - 1e-6:
                # One line: what multi_cell() would draw, without its line breaker.
                self.line_of(0, 4.4, text, "L", next_line=True)
            else:
                self.multi_cell(0, 4.4, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(3)


_TABLE_SIZE = 8.5
_TABLE_LINE = 4.6
_TABLE_PAD = 1.2


@dataclass
class _TableRow:
    """One table row: its cell texts, font style and, once measured, lines and height."""

    texts: list[str]
    style: str
    shaded: bool = False
    lines: list[int] = field(default_factory=list)
    height: float = 0.0


def _line_rows(doc: Invoice | Quote | PurchaseOrder) -> list[list[str]]:
    return [
        [
            str(number),
            line.description,
            format_quantity(line.quantity),
            line.unit,
            format_amount(line.unit_price, doc.currency),
            _format_rate(line.tax_rate),
            format_amount(doc.line_total(line), doc.currency),
        ]
        for number, line in enumerate(doc.lines, 1)
    ]


def _render_lines(pdf: _Pdf, doc: Invoice | Quote | PurchaseOrder, library: Library) -> None:
    contact = library.contact(doc)
    number_label = "Order number" if isinstance(doc, PurchaseOrder) else f"{doc.LABEL} number"
    dates: list[tuple[str, str]] = [(number_label, doc.number)]
    dates.append(("Date", format_date(doc.issue_date)))
    if isinstance(doc, Invoice):
        dates.append(("Due date", format_date(doc.due_date)))
    elif isinstance(doc, Quote):
        dates.append(("Valid until", format_date(doc.valid_until)))
    elif doc.delivery_date is not None:
        dates.append(("Delivery date", format_date(doc.delivery_date)))
    dates += [("Reference", doc.reference), ("Currency", doc.currency)]
    label = "Supplier" if isinstance(doc, PurchaseOrder) else "Bill to"
    if isinstance(doc, Quote):
        label = "Prepared for"
    pdf.party_and_facts(label, contact, dates)
    if isinstance(doc, PurchaseOrder):
        pdf.address_block("Deliver to", doc.delivery_address)
    pdf.table_of(
        ["#", "Description", "Qty", "Unit", "Unit price", "Tax", f"Amount ({doc.currency})"],
        _line_rows(doc),
        widths=(6, 62, 11, 11, 20, 11, 23),
        aligns=("R", "L", "R", "L", "R", "R", "R"),
    )
    rows = [("Subtotal", format_money(doc.subtotal, doc.currency))]
    for tax in doc.taxes:
        base = format_money(tax.base, doc.currency)
        rows.append(
            (f"Tax {_format_rate(tax.rate)} on {base}", format_money(tax.amount, doc.currency))
        )
    pdf.totals(rows, (f"Total {doc.currency}", format_money(doc.total, doc.currency)))
    if isinstance(doc, Invoice):
        pdf.paragraphs("Payment terms", [doc.payment_terms])
        pdf.paragraphs("Please pay to", library.business.bank)
    pdf.paragraphs("Notes", doc.notes)


def _render_statement(pdf: _Pdf, doc: Statement, library: Library) -> None:
    period = f"{format_date(doc.period_start)} – {format_date(doc.period_end)}"
    facts = [
        ("Statement", doc.number),
        ("Date", format_date(doc.issue_date)),
        ("Period", period),
        ("Reference", doc.reference),
        ("Currency", doc.currency),
    ]
    pdf.party_and_facts("Statement for", library.contact(doc), facts)
    balance = doc.opening_balance
    rows = [[format_short_date(doc.period_start), "Opening balance", "", "", "", ""]]
    rows[0][5] = format_amount(balance, doc.currency)
    for entry in doc.entries:
        balance += entry.amount
        charge = format_amount(entry.amount, doc.currency) if entry.amount >= 0 else ""
        paid = format_amount(-entry.amount, doc.currency) if entry.amount < 0 else ""
        rows.append(
            [
                format_short_date(entry.date),
                entry.description,
                entry.reference,
                charge,
                paid,
                format_amount(balance, doc.currency),
            ]
        )
    pdf.table_of(
        ["Date", "Description", "Reference", "Charges", "Payments", "Balance"],
        rows,
        widths=(24, 50, 28, 20, 20, 22),
        aligns=("L", "L", "L", "R", "R", "R"),
    )
    pdf.totals(
        [("Opening balance", format_money(doc.opening_balance, doc.currency))],
        ("Closing balance", format_money(doc.closing_balance, doc.currency)),
    )
    pdf.paragraphs("Please pay to", library.business.bank)
    pdf.paragraphs("Notes", doc.notes)


def _cell_text(value: str | int | Decimal) -> str:
    return value if isinstance(value, str) else f"{value:,}"


def _render_report(pdf: _Pdf, doc: Report, library: Library) -> None:
    names = [library.contacts[r].name for r in doc.recipients if r in library.contacts]
    facts = [("Report", doc.number), ("Date", format_date(doc.issue_date))]
    facts.append(("Reference", doc.reference))
    pdf.party_and_facts("Prepared for", library.contact(doc), facts, emails=False)
    pdf.put(0, 7, doc.title, style="B", size=13)
    pdf.ln(1)
    if len(names) > 1:
        pdf.paragraphs("Also sent to", [", ".join(dict.fromkeys(names[1:]))])
    if doc.subtitle:
        pdf.paragraphs("", [doc.subtitle])
    numeric = [all(_looks_numeric(row[i]) for row in doc.rows) for i in range(len(doc.columns))]
    rows = [[_cell_text(cell) for cell in row] for row in doc.rows]
    if doc.totals is not None:
        rows.append([_cell_text(cell) for cell in doc.totals])
    weights = [max([len(c)] + [len(r[i]) for r in rows]) + 4 for i, c in enumerate(doc.columns)]
    pdf.table_of(
        doc.columns,
        rows,
        widths=tuple(float(w) for w in weights),
        aligns=tuple("R" if n else "L" for n in numeric),
        bold_last=doc.totals is not None,
    )
    pdf.paragraphs("Notes", doc.notes)


def _looks_numeric(value: str | int | Decimal) -> bool:
    if not isinstance(value, str):
        return True
    return bool(re.fullmatch(r"[-+]?[\d,. ]+\s*%?|", value.strip()))


def _model_characters(doc: AnyDocument, library: Library) -> set[str]:
    """Every character in the document's data: decides whether a fallback is needed."""
    chars: set[str] = set()
    ids = doc.recipients if isinstance(doc, Report) else [doc.contact_id]
    contacts = [library.contacts[i] for i in ids if i in library.contacts]
    for model in (doc, library.business, *contacts):
        chars.update(str(model.model_dump(mode="json")))
    return chars


def _fallback_candidates(configured: str) -> list[Path]:
    candidates = [Path(configured).expanduser()] if configured else []
    candidates += [path for path in SYSTEM_FALLBACK_FONTS if path.is_file()]
    return candidates


def render_pdf(
    doc: AnyDocument,
    library: Library,
    *,
    fallback_font: str = "",
    creation_date: dt.datetime | None = None,
) -> bytes:
    """Render one document to PDF bytes.

    Args:
        doc: The document (from ``library.documents``).
        library: The loaded folder (contacts and the business profile).
        fallback_font: A TTF/OTF/TTC file for characters DejaVu Sans lacks (settings
            ``[documents] fallback_font``); known system CJK fonts are tried after it.
        creation_date: Fixed creation date for byte-identical output (naive means UTC).

    Raises:
        MissingGlyphsError: A character that no available font can show.
        ValueError: The configured fallback font is missing or unreadable.
    """
    pdf = _Pdf(doc, library.business)
    _add_font(pdf, "DejaVu", "", REGULAR_FONT)
    _add_font(pdf, "DejaVu", "B", BOLD_FONT)
    fonts = {"": _template(REGULAR_FONT, "").cmap, "B": _template(BOLD_FONT, "B").cmap}
    tried = [REGULAR_FONT.name]

    needed = {ord(c) for c in _model_characters(doc, library)} - (fonts[""] & fonts["B"])
    fallback_cmaps: set[int] = set()
    if needed:
        if fallback_font and not Path(fallback_font).expanduser().is_file():
            raise ValueError(f"fallback font {fallback_font!r} (settings documents) is not a file")
        families: list[str] = []
        for index, path in enumerate(_fallback_candidates(fallback_font)):
            family = f"fallback{index}"
            try:
                cmap = _template(path, "").cmap
            except Exception as exc:  # fontTools raises many types for a bad file
                if index == 0 and fallback_font:
                    raise ValueError(f"fallback font {str(path)!r} cannot be read: {exc}") from exc
                continue
            tried.append(path.name)
            if not needed & cmap:
                continue
            _add_font(pdf, family, "", path)
            families.append(family)
            fallback_cmaps |= cmap
            needed -= cmap
            if not needed:
                break
        if families:
            pdf.set_fallback_fonts(families, exact_match=False)
            pdf.fallback_fonts = families

    if creation_date is not None:
        if creation_date.tzinfo is None:
            creation_date = creation_date.replace(tzinfo=dt.UTC)
        pdf.set_creation_date(creation_date)
    pdf.set_title(doc.title)
    pdf.set_author(library.business.name)
    pdf.set_subject(f"{doc.title} for {library.contact(doc).name}")
    pdf.set_creator("smtpdesk")
    pdf.set_lang("en")

    pdf.add_page()
    if isinstance(doc, Invoice | Quote | PurchaseOrder):
        _render_lines(pdf, doc, library)
    elif isinstance(doc, Statement):
        _render_statement(pdf, doc, library)
    else:
        _render_report(pdf, doc, library)

    missing: dict[str, None] = {}
    for style, char in pdf.drawn:
        code = ord(char)
        if code not in fonts[style] and code not in fallback_cmaps:
            missing[char] = None
    try:
        if missing:
            raise MissingGlyphsError(list(missing), tried)
        return bytes(pdf.output(output_producer_class=_Output))
    finally:
        # fpdf2 never closes the font files it opened (fonts added without the cache).
        for font in pdf.fonts.values():
            if isinstance(font, TTFFont):
                font.ttfont.close()

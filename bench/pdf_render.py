"""Benchmark 4: one-page invoices rendered with the Unicode font, per document, in one process.

smtpdesk (``tui.pdf.render_pdf`` with its font cache) against fpdf2 loading the
fonts itself for every document (``_CLONE_FONTS = False``: the naive render),
interleaved, over the sample invoices; the first render (cold cache) is reported
apart. Target: ≤ 20 ms per document in a batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from bench import Row, median, worker


def run(source: Path, quick: bool) -> list[Row]:
    count = 40 if quick else 200
    data = worker("pdf_render", source, str(count))
    return [
        Row(
            "4 PDF invoice",
            f"median per document over {count}",
            data["cached_ms"],
            data["naive_ms"],
            "ms",
            "≤ 20 ms",
            f"first document (cold) {data['first_ms']:.0f} ms; reference: fpdf2 loads the font "
            "for every document",
        )
    ]


def _worker(count: int) -> None:
    import tui
    import tui.pdf as pdfmod
    from tui.documents import Invoice, load_folder

    library = load_folder(Path(tui.__file__).parent / "samples")
    invoices = [d for d in library.documents.values() if isinstance(d, Invoice)]
    fixed = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    start = time.perf_counter()
    pdfmod.render_pdf(invoices[0], library, creation_date=fixed)
    first = time.perf_counter() - start
    cached: list[float] = []
    naive: list[float] = []
    for index in range(count):
        doc = invoices[index % len(invoices)]
        for clone, sink in ((True, cached), (False, naive)):
            if not clone and index % 4:
                continue  # the naive render is slow: a quarter of the runs is enough
            pdfmod._CLONE_FONTS = clone
            start = time.perf_counter()
            pdfmod.render_pdf(doc, library, creation_date=fixed)
            sink.append(time.perf_counter() - start)
    pdfmod._CLONE_FONTS = True
    print(
        json.dumps(
            {
                "first_ms": first * 1000,
                "cached_ms": median(cached) * 1000,
                "naive_ms": median(naive) * 1000,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("count", type=int)
    _worker(parser.parse_args().count)

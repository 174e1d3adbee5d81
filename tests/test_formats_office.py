"""Issue 46, documents as people keep them: .docx (python-docx), .epub (ebooklib), .odt (odfpy), and scanned PDFs
read by OCR (Debian's tesseract-ocr through pytesseract). Each file is made in the test by the library that writes
that format (a scan: text drawn by Pillow into an image, saved as a PDF with no text layer), and a malformed one
of each is skipped with a one-line reason naming it. Fast: no model (tesseract reads a page in about a second)."""
from __future__ import annotations

import io
import logging
import time
import zipfile

import pytest

from doc_makers import make_docx, make_epub, make_odt, make_scanned_pdf, zip_bomb
from qa_bot import ocr
from qa_bot.errors import CorpusError, QABotError
from qa_bot.extractor import extract
from qa_bot.formats import DOC_SUFFIXES
from qa_bot.formats_office import MAX_MEMBERS, MAX_UNZIPPED_BYTES
from qa_bot.ingest import chunk_text, document_from_bytes, load_corpus
from qa_bot.ocr import OcrOptions
from qa_bot.structure import headings
from qa_bot.settings import Settings

needs_tesseract = pytest.mark.skipif(not ocr.tesseract_version(), reason="tesseract is not installed "
                                     "(apt-get install tesseract-ocr; scripts/setup.sh --test does it as root)")

QUARRY = "The quarry at Elm Ridge reopens on 4 May 2024 after two years of repairs."
TABLE = [["Year", "Tonnes"], ["2022", "1,200"], ["2023", "1,450"]]
FERRY_PAGES = [["Ferry timetable for Marsh Island", "The first ferry to Marsh Island leaves at 9 am daily."],
               ["Fares", "A single ticket to Marsh Island costs 4 dollars."]]


def _docx() -> bytes:
    return make_docx("Elm Ridge quarry report", "Ana Ruiz", "Quarry reopening",
                     [QUARRY, "Its owner expects to hire 40 workers."], TABLE)


def _exact(source: str, data: bytes, **kw):
    """The document, after checking every chunk is an exact span of its extracted text (what citations quote)."""
    doc = document_from_bytes(source, data, **kw)
    chunks = chunk_text(doc.text, source, max_chars=400, max_tokens=256, count_tokens=lambda t: len(t.split()) + 2)
    assert chunks and all(doc.text[c.start:c.end] == c.text for c in chunks)
    return doc


def test_all_new_formats_are_corpus_and_upload_formats():
    for suffix in (".docx", ".epub", ".odt"):
        assert suffix in DOC_SUFFIXES


def test_docx_paragraphs_headings_and_table_rows_with_its_metadata():
    doc = _exact("quarry.docx", _docx())
    assert doc.text.startswith("Quarry reopening\n\n" + QUARRY)
    # the heading is a line of its own, found as a heading; each table row is one line of its cells
    assert "Quarry reopening" in [doc.text[a:b] for a, b in headings(doc.text)]
    assert "Year | Tonnes\n\n2022 | 1,200\n\n2023 | 1,450" in doc.text
    assert (doc.meta.title, doc.meta.author, doc.meta.date) == ("Elm Ridge quarry report", "Ana Ruiz", "2024-03-05")
    assert doc.pages == () and doc.page(10) is None


def test_epub_chapters_in_reading_order_with_its_metadata():
    data = make_epub("The Lighthouse Keepers", "Mary Stone", "2021-06-01",
                     [("Chapter One", ["The lighthouse at Gull Point was built in 1871."]),
                      ("Chapter Two", ["Its lamp was electrified in 1932.", "A <b>museum</b> opened there in 1990."])])
    doc = _exact("keepers.epub", data)
    # the chapters were added to the archive in reverse: the spine's order is the one read
    assert doc.text == ("Chapter One\n\nThe lighthouse at Gull Point was built in 1871.\n\nChapter Two\n\n"
                        "Its lamp was electrified in 1932.\n\nA museum opened there in 1990.\n")
    m = doc.meta
    assert (m.title, m.author, m.date, m.publisher) == ("The Lighthouse Keepers", "Mary Stone", "2021-06-01", "Harbor Press")


def test_odt_headings_paragraphs_and_table_rows_with_its_metadata():
    data = make_odt("Council minutes", "Town Clerk", "2022-09-14T10:00:00", "Budget vote",
                    ["The council approved a budget of 3.2 million euros.", "The vote was 7 to 2."],
                    [["Item", "Cost"], ["Roads", "1.1 million euros"]])
    doc = _exact("minutes.odt", data)
    assert doc.text == ("Budget vote\n\nThe council approved a budget of 3.2 million euros.\n\nThe vote was 7 to 2."
                        "\n\nItem | Cost\n\nRoads | 1.1 million euros\n")
    assert (doc.meta.title, doc.meta.author, doc.meta.date) == ("Council minutes", "Town Clerk", "2022-09-14")


def _malformed() -> dict[str, bytes]:
    good = _docx()
    no_body = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(no_body, "w") as dst:
        for item in src.infolist():
            if item.filename != "word/document.xml":
                dst.writestr(item, src.read(item))
    epub_no_container = io.BytesIO()
    with zipfile.ZipFile(epub_no_container, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("OEBPS/chap.xhtml", "<html><body><p>Lost chapter.</p></body></html>")
    odt = make_odt("T", "A", "2022-01-01", "H", ["Some text."])
    return {"truncated.docx": good[: len(good) // 2], "no_body.docx": no_body.getvalue(),
            "not_a_zip.epub": b"<html>this is no book</html>", "no_container.epub": epub_no_container.getvalue(),
            "truncated.odt": odt[: len(odt) // 3], "words.odt": b"just some words, not a zip"}


def test_malformed_files_of_each_format_are_skipped_with_a_reason_naming_them(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="qa_bot")
    for name, data in _malformed().items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "good.docx").write_bytes(_docx())
    docs, skipped = load_corpus(tmp_path, 1 << 22)
    assert [d.source for d in docs] == ["good.docx"]  # the rest of the archive
    reasons = {s.source: s.reason for s in skipped}
    assert sorted(reasons) == sorted(_malformed())
    for name, reason in reasons.items():
        assert reason.startswith(f"{name}: ") and "\n" not in reason and "Traceback" not in reason
        assert f"skipped {name}" in caplog.text
    assert "not a zip archive" in reasons["not_a_zip.epub"] and "EPUB" in reasons["no_container.epub"]
    assert "DOCX" in reasons["no_body.docx"] and "ODT" in reasons["truncated.odt"]


def test_zip_bombs_are_refused_from_the_archive_table_before_anything_is_unpacked():
    bomb = zip_bomb("word/document.xml", MAX_UNZIPPED_BYTES + (1 << 20), {"[Content_Types].xml": b"<Types/>"})
    assert len(bomb) < 1 << 20  # under a megabyte on disk
    t = time.perf_counter()
    with pytest.raises(CorpusError, match=r"bomb\.docx: the Word document \(DOCX\) unpacks to .* MB, over the 134 MB"):
        extract("bomb.docx", bomb)
    assert time.perf_counter() - t < 1.0  # judged from the table of contents: nothing was inflated
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as z:
        for i in range(MAX_MEMBERS + 1):
            z.writestr(f"OEBPS/{i}.xhtml", b"")
    with pytest.raises(CorpusError, match="many.epub: the EPUB book holds 10,001 files"):
        extract("many.epub", many.getvalue())


def test_uploads_take_the_new_formats_too():
    from qa_bot.uploads import check_upload

    settings = Settings.from_env({})
    for name in ("notes.docx", "book.epub", "minutes.odt"):
        assert check_upload(settings, name, 1000) == name
    doc = document_from_bytes("session/quarry.docx", _docx())
    assert QUARRY in doc.text and doc.meta.author == "Ana Ruiz"
    with pytest.raises(CorpusError, match="session/bad.odt: not a readable OpenDocument text"):
        document_from_bytes("session/bad.odt", _malformed()["truncated.odt"])


# --- scanned PDFs -----------------------------------------------------------------------------------------------
@needs_tesseract
def test_a_scanned_pdf_is_read_by_ocr_page_by_page_and_cached_by_the_page_image(tmp_path, monkeypatch):
    data = make_scanned_pdf(FERRY_PAGES, title="Ferry notice", author="Port Office")
    options = OcrOptions(cache_dir=tmp_path / "ocr")
    doc = _exact("ferry_scan.pdf", data, ocr=options)
    fare = "A single ticket to Marsh Island costs 4 dollars."
    assert "The first ferry to Marsh Island leaves at 9 am daily." in doc.text and fare in doc.text
    assert len(doc.pages) == 2 and doc.page(doc.text.index(fare)) == 2 and doc.page(0) == 1  # pages stay right
    assert (doc.meta.title, doc.meta.author, doc.meta.date) == ("Ferry notice", "Port Office", "2023-11-20")
    assert len(list((tmp_path / "ocr").rglob("*.txt"))) == 2  # one cached text per page image

    def no_ocr(*a, **k):
        raise AssertionError("OCR ran again")

    monkeypatch.setattr("pytesseract.image_to_string", no_ocr)  # a re-index reads the cache, never tesseract
    again = document_from_bytes("renamed.pdf", data, ocr=options)
    assert again.text == doc.text and again.pages == doc.pages


@needs_tesseract
def test_ocr_is_bounded_by_its_page_cap_and_says_which_pages_it_left(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="qa_bot")
    doc = document_from_bytes("ferry.pdf", make_scanned_pdf(FERRY_PAGES), ocr=OcrOptions(max_pages=1))
    assert "9 am" in doc.text and "4 dollars" not in doc.text and len(doc.pages) == 2
    assert ("ferry.pdf: pages without a text layer were not all read: page 2 not OCRed (at most "
            "QA_BOT_OCR_MAX_PAGES=1") in caplog.text


def test_ocr_off_or_tesseract_missing_skips_a_scan_with_a_message_saying_what_to_do(tmp_path, monkeypatch):
    data = make_scanned_pdf(FERRY_PAGES[:1])
    with pytest.raises(CorpusError, match=r"^scan\.pdf: the PDF has no text layer \(a scanned image\?\) and OCR is off \(QA_BOT_OCR=0\)$"):
        extract("scan.pdf", data, ocr=OcrOptions(enabled=False))
    assert not Settings.from_env({"QA_BOT_OCR": "0"}).ocr and Settings.from_env({}).ocr
    with pytest.raises(QABotError, match="QA_BOT_OCR_MAX_PAGES=0 must be at least 1"):
        Settings.from_env({"QA_BOT_OCR_MAX_PAGES": "0"})
    monkeypatch.setattr(ocr, "tesseract_version", lambda: "")  # as on a machine without tesseract-ocr
    # ... in this process: a corpus PDF is otherwise read by the child reader, which has the real tesseract
    from qa_bot import formats, ingest

    monkeypatch.setattr(ingest, "extract", formats.extract_here)
    (tmp_path / "scan.pdf").write_bytes(data)
    (tmp_path / "note.txt").write_text("A note.", encoding="utf-8")
    docs, skipped = load_corpus(tmp_path, 1 << 22, ocr=OcrOptions())
    assert [d.source for d in docs] == ["note.txt"]
    (reason,) = [s.reason for s in skipped]
    assert reason.startswith("scan.pdf: the PDF has no text layer (a scanned image?) and tesseract is not installed")
    assert "apt-get install tesseract-ocr" in reason and "\n" not in reason


@needs_tesseract
def test_a_malformed_scan_is_skipped_with_a_reason():
    data = make_scanned_pdf(FERRY_PAGES[:1])
    start = data.index(b"stream\n") + 7
    broken_image = data[:start + 200] + b"\x00garbage" * 50 + data[start + 600:]
    with pytest.raises(CorpusError, match=r"^broken\.pdf: the PDF has no text layer \(a scanned image\?\) and page 1: an image cannot be decoded"):
        extract("broken.pdf", broken_image, ocr=OcrOptions())
    with pytest.raises(CorpusError, match=r"^cut\.pdf: not a readable PDF"):
        extract("cut.pdf", data[: len(data) // 2], ocr=OcrOptions())


# --- the real bot over one file of each new format ---------------------------------------------------------------
@pytest.mark.slow
@needs_tesseract
def test_the_real_bot_answers_from_each_new_format_with_an_exact_citation(tmp_path):
    """A corpus folder holding one DOCX, EPUB, ODT and scanned PDF: the shipped bot (MiniLM, FAISS, BM25 and the
    Qwen2.5-Coder-1.5B reader) answers a question about each, citing the exact sentence of its extracted text
    (and, for the scan, the page it is on)."""
    from qa_bot import QABot

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "quarry.docx").write_bytes(_docx())
    (corpus / "keepers.epub").write_bytes(make_epub(
        "The Lighthouse Keepers", "Mary Stone", "2021-06-01",
        [("Chapter One", ["The lighthouse at Gull Point was built in 1871."]),
         ("Chapter Two", ["Its lamp was electrified in 1932."])]))
    (corpus / "minutes.odt").write_bytes(make_odt(
        "Council minutes", "Town Clerk", "2022-09-14T10:00:00", "Budget vote",
        ["The council approved a road budget of 3.2 million euros.", "The vote was 7 to 2."]))
    (corpus / "ferry_scan.pdf").write_bytes(make_scanned_pdf(FERRY_PAGES, title="Ferry notice"))
    cases = [("quarry.docx", "When does the quarry at Elm Ridge reopen?", "4 May 2024", None),
             ("keepers.epub", "When was the lighthouse at Gull Point built?", "1871", None),
             ("minutes.odt", "How large a road budget did the council approve?", "3.2 million", None),
             ("ferry_scan.pdf", "How much does a single ticket to Marsh Island cost?", "4 dollars", 2)]
    with QABot(settings=Settings.from_env(corpus_dir=corpus, cache_dir=tmp_path / "cache")) as bot:
        assert sorted(bot.documents) == sorted(c[0] for c in cases) and not bot.skipped
        for source, question, fact, page in cases:
            a = bot.ask(question)
            assert not a.abstained and fact in a.text, (question, a.text, a.reason)
            cited = [c for c in a.citations if c.source == source and fact in c.text]
            assert cited, (question, a.citations)
            for c in a.citations:
                assert bot.document_text(c.source)[c.start:c.end] == c.text  # exact, highlightable
            assert cited[0].page == page and cited[0].title == bot.titles[source]

"""Real documents made by the libraries that write them, for the format tests (nothing committed as a fixture):
a DOCX by python-docx, an EPUB by ebooklib, an ODT by odfpy, and a scanned page: text drawn by Pillow into an
image, saved as a PDF with no text layer."""
from __future__ import annotations

import io
import time
import zipfile
from datetime import datetime, timezone


def make_docx(title: str, author: str, heading: str, paragraphs: list[str], table: list[list[str]] = (),
              created: datetime | None = None) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(heading, level=1)
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    d.core_properties.title = title
    d.core_properties.author = author
    d.core_properties.created = created or datetime(2024, 3, 5, 9, 30, tzinfo=timezone.utc)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def make_epub(title: str, author: str, date: str, chapters: list[tuple[str, list[str]]]) -> bytes:
    """An EPUB whose spine lists the chapters in the order given, though they are added to the book in reverse
    (reading order is the spine's, not the archive's)."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("qa-bot-test-book")
    book.set_title(title)
    book.set_language("en")
    book.add_author(author)
    book.add_metadata("DC", "date", date)
    book.add_metadata("DC", "publisher", "Harbor Press")
    items = []
    for i, (heading, paragraphs) in enumerate(chapters, 1):
        ch = epub.EpubHtml(title=heading, file_name=f"chap_{i}.xhtml", lang="en")
        ch.content = f"<h1>{heading}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs)
        items.append(ch)
    for ch in reversed(items):
        book.add_item(ch)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    buf = io.BytesIO()
    epub.write_epub(buf, book)
    return buf.getvalue()


def make_odt(title: str, author: str, date: str, heading: str, paragraphs: list[str],
             table: list[list[str]] = ()) -> bytes:
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.meta.addElement(dc.Title(text=title))
    doc.meta.addElement(meta.InitialCreator(text=author))
    doc.meta.addElement(meta.CreationDate(text=date))
    doc.text.addElement(H(outlinelevel=1, text=heading))
    for p in paragraphs:
        doc.text.addElement(P(text=p))
    if table:
        t = Table(name="Figures")
        t.addElement(TableColumn(numbercolumnsrepeated=len(table[0])))
        for row in table:
            tr = TableRow()
            for value in row:
                cell = TableCell()
                cell.addElement(P(text=value))
                tr.addElement(cell)
            t.addElement(tr)
        doc.text.addElement(t)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def page_image(lines: list[str], width: int = 1700, size: int = 34):
    """Black text on white, as a 200 dpi scan of a letter-size page would show it (one line per entry)."""
    from PIL import Image, ImageDraw

    font = _font(size)
    line_h = int(size * 1.6)
    img = Image.new("L", (width, 160 + line_h * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((100, 80 + i * line_h), line, fill=0, font=font)
    return img


def make_scanned_pdf(pages: list[list[str]], title: str = "", author: str = "") -> bytes:
    """A PDF of page images only (no text layer), one page per entry, as a scanner writes it."""
    images = [page_image(lines) for lines in pages]
    buf = io.BytesIO()
    extra = {k: v for k, v in (("title", title), ("author", author)) if v}
    images[0].save(buf, "PDF", resolution=200.0, save_all=True, append_images=images[1:],
                   creationDate=time.strptime("2023-11-20 08:00", "%Y-%m-%d %H:%M"), **extra)
    return buf.getvalue()


def zip_bomb(member: str, size: int, others: dict[str, bytes] = ()) -> bytes:
    """A zip whose `member` unpacks to `size` bytes of zeros (a few KB packed), beside `others`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in dict(others).items():
            z.writestr(name, data)
        with z.open(member, "w", force_zip64=True) as f:
            block = b"\0" * (1 << 20)
            for _ in range(size // len(block)):
                f.write(block)
    return buf.getvalue()

"""Writes the PDF fixtures of mixed_corpus/ and bad_corpus/ (committed; rerun to regenerate):
a two-page report with a text layer and metadata, a page with no text layer (as a scan), and an encrypted one.
A minimal PDF is written by hand (pypdf reads text but cannot lay it out); pypdf encrypts the copy."""
from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).parent


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def minimal_pdf(pages: list[list[str]], info: dict[str, str]) -> bytes:
    """A PDF whose pages show these lines in Helvetica (a page with no lines has no text layer)."""
    objs: list[bytes] = []
    kids = []
    font = 3
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(b"")  # pages, filled in below
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        ops = ["BT /F1 11 Tf 14 TL 72 740 Td"] + [f"({_escape(ln)}) Tj T*" for ln in lines] + ["ET"]
        if not lines:  # a "scan": a grey rectangle, no text
            ops = ["0.5 g 72 300 400 400 re f"]
        stream = "\n".join(ops).encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objs)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font))
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    objs.append(("<< " + " ".join(f"/{k} ({_escape(v)})" for k, v in info.items()) + " >>").encode("latin-1"))
    info_ref = len(objs)
    return pdf_file(objs, info_ref)


def pdf_file(objs: list[bytes], info_ref: int | None = None) -> bytes:
    """A PDF file of these object bodies (object 1 is the catalog), with its cross-reference table and trailer;
    info_ref: the number of the document-information object, if there is one."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    info = b" /Info %d 0 R" % info_ref if info_ref is not None else b""
    out.write(b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, info, xref))
    return out.getvalue()


REPORT = [
    ["Northwind Rail Annual Report 2023",
     "",
     "Northwind Rail carried 48 million passengers in 2023, up from 41 million a year earlier.",
     "The company opened the Harbor Line extension in June 2023 after three years of work."],
    ["Outlook",
     "",
     "Northwind Rail expects to order 30 new electric trains from Kestrel Works in 2024.",
     "The board approved a dividend of 12 cents per share."],
]


def main() -> None:
    from pypdf import PdfReader, PdfWriter

    info = {"Title": "Northwind Rail Annual Report 2023", "Author": "Northwind Rail Investor Relations",
            "CreationDate": "D:20230915093000Z"}
    report = minimal_pdf(REPORT, info)
    (HERE / "mixed_corpus" / "northwind_annual_report.pdf").write_bytes(report)
    (HERE / "bad_corpus" / "scanned_letter.pdf").write_bytes(minimal_pdf([[]], {"Title": "A scanned letter"}))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(report)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    (HERE / "bad_corpus" / "locked_report.pdf").write_bytes(buf.getvalue())


if __name__ == "__main__":
    main()

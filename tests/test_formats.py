"""Issue 11, formats and metadata: each format's extracted text is readable (no markup, no boilerplate), its
metadata is read, and bad files are skipped or indexed without the bad field, with a warning naming them.
Fast: no model (trafilatura and pypdf only)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qa_bot.errors import CorpusError
from qa_bot.extractor import extract
from qa_bot.formats_base import iso_date, page_at
from qa_bot.formats_markup import markdown_text, rst_text
from qa_bot.ingest import document_from_bytes, load_corpus

DATA = Path(__file__).parent / "data"
MIXED = DATA / "mixed_corpus"
BAD = DATA / "bad_corpus"


def _extract(name: str):
    return extract(name, (MIXED / name).read_bytes())


def test_html_main_text_without_boilerplate_and_its_open_graph_metadata():
    e = _extract("harbor_gazette_ferry.html")
    assert "a single ticket will cost 4 dollars" in e.text
    assert "according to the transport plan." in e.text  # a link as its text
    for boilerplate in ("SCRIPT TEXT", "Subscribe now", "Most read", "All rights reserved", "font-family", "<"):
        assert boilerplate not in e.text
    m = e.meta
    assert (m.title, m.date, m.author, m.publisher) == (
        "City council approves new ferry route to Gull Island", "2023-05-12", "Dana Whitfield", "Harbor Gazette")
    assert m.url == "https://www.harborgazette.example/news/2023/ferry-route"


def test_markdown_markup_is_shown_as_readable_text_and_front_matter_is_metadata():
    e = _extract("kestrel_launch.md")
    assert "Kestrel Works presented its K7 electric train at the InnoRail fair in Berlin on Wednesday." in e.text
    assert "a top speed of 160 km/h" in e.text
    assert "built at the Dunmore plant." in e.text
    for markup in ("**", "](", "[", "`", "# ", "> ", "---", "title:", "https://"):
        assert markup not in e.text, markup
    assert (e.meta.title, e.meta.date, e.meta.author, e.meta.publisher) == (
        "Kestrel Works unveils the K7 electric train", "2022-11-02", "Sam Ortega", "Rail Business Weekly")
    assert markdown_text("See ![a chart](c.png) and <https://x.example/> and _this_ ~~old~~.\n") == \
        "See a chart and https://x.example/ and this old.\n"


def test_markdown_badges_are_dropped_and_fenced_code_is_kept_indented():
    md = ("[![Build Status](https://ci.example/badge.svg?branch=main)](https://ci.example/actions?q=x) "
          "[![PyPI](https://img.example/v/tomli)](https://pypi.example/tomli)\n![logo](logo.png)\n\n# Tomli\n\n"
          "A parser, with ![a chart](c.png) inline.\n\n```toml\n# a comment\n[table]\njari = 17\n```\n\nAfter the code.\n")
    assert markdown_text(md) == ("Tomli\n\nA parser, with a chart inline.\n\n    # a comment\n    [table]\n    jari = 17\n\n"
                                 "After the code.\n")
    # the title is the heading, not a badge's alt text (ingest takes the first line that reads as a title)
    from qa_bot.ingest import _title_from_text

    assert _title_from_text(extract("tomli_README.md", md.encode()).text, "tomli_README.md") == "Tomli (tomli README)"
    assert markdown_text("~~~\ncode ``` inside\n~~~\nText.\n") == "    code ``` inside\nText.\n"


def test_an_rst_admonition_keeps_its_text_as_sphinx_shows_it():
    text, _ = rst_text("20.6 - 2020-11-28\n~~~~~~~~~~~~~~~~~\n\n.. note:: This release was subsequently yanked, and "
                       "these changes were included in 20.7.\n\n.. currentmodule:: click\n\n.. versionchanged:: 2.0\n"
                       "    Uses ``X``.\n")
    assert text == ("20.6 - 2020-11-28\n\nNote: This release was subsequently yanked, and these changes were included "
                    "in 20.7.\n\nChanged in version 2.0\n    Uses X.\n")


def test_rst_roles_links_and_adornments_are_removed_and_docinfo_is_metadata():
    e = _extract("signal_upgrade.rst")
    assert "The new CBTC system lets trains run every 90 seconds" in e.text
    assert "as the\nproject page explains." in e.text
    assert "funded by the regional infrastructure fund." in e.text
    for markup in (":term:", "`", "<https", "====", "----", ".. note::", ":Date:", "**"):
        assert markup not in e.text, markup
    assert (e.meta.title, e.meta.date) == ("", "2021-07-19")  # the title comes from the first line (ingest)
    text, fields = rst_text("Title\n=====\n\n:Author: Me\n\nSee :ref:`the guide <guide>` and ``x = 1``.\n")
    assert text == "Title\n\nSee the guide and x = 1.\n" and fields == {"author": "Me"}


def test_pdf_text_is_read_page_by_page_with_its_metadata():
    e = _extract("northwind_annual_report.pdf")
    assert len(e.pages) == 2 and e.pages[0] == 0
    assert e.text[e.pages[1]:].startswith("Outlook")
    at = e.text.index("30 new electric trains")
    assert page_at(e.pages, at) == 2 and page_at(e.pages, e.text.index("48 million")) == 1
    assert (e.meta.title, e.meta.date, e.meta.author) == (
        "Northwind Rail Annual Report 2023", "2023-09-15", "Northwind Rail Investor Relations")


def test_txt_is_as_on_disk_and_a_sidecar_gives_its_metadata():
    docs, skipped = load_corpus(MIXED, 1 << 20)
    by = {d.source: d for d in docs}
    assert not skipped and sorted(by) == ["harbor_gazette_ferry.html", "kestrel_launch.md",
                                          "northwind_annual_report.pdf", "port_strike.txt", "signal_upgrade.rst"]
    txt = by["port_strike.txt"]
    assert txt.text == (MIXED / "port_strike.txt").read_bytes().decode("utf-8")
    assert (txt.meta.title, txt.meta.date, txt.meta.publisher) == (
        "Dockworkers end strike at Port of Calder", "2024-02-05", "Calder Evening Post")
    assert by["signal_upgrade.rst"].meta.title == "Signal upgrade on the East Line"  # first line, as for .txt
    assert all(d.meta.title and d.meta.date for d in docs)
    assert by["northwind_annual_report.pdf"].page(len(by["northwind_annual_report.pdf"].text) - 1) == 2
    assert by["port_strike.txt"].page(0) is None


@pytest.mark.parametrize("value,iso", [
    ("2023-05-12", "2023-05-12"), ("2023-05-12T08:30:00+00:00", "2023-05-12"), ("2023/05/12", "2023-05-12"),
    ("D:20230915093000Z", "2023-09-15"), ("12 May 2023", "2023-05-12"), ("May 12, 2023", "2023-05-12"),
    ("Sept. 3, 2021", "2021-09-03"),
])
def test_dates_are_made_iso(value, iso):
    assert iso_date(value) == iso


@pytest.mark.parametrize("value", ["sometime next spring", "2023-13-45", "", "12/05", "May 2023"])
def test_a_date_that_cannot_be_parsed_is_an_error(value):
    with pytest.raises(ValueError):
        iso_date(value)


def test_bad_files_are_skipped_or_indexed_without_the_bad_field_and_named_in_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="qa_bot")
    docs, skipped = load_corpus(BAD, 1 << 20)
    by = {d.source: d for d in docs}
    assert sorted(by) == ["good_report.txt", "lighthouse.txt", "undated_note.md"]  # the rest of the archive
    reasons = {s.source: s.reason for s in skipped}
    assert sorted(reasons) == ["broken_page.html", "locked_report.pdf", "scanned_letter.pdf"]
    assert "no article text" in reasons["broken_page.html"]
    assert "encrypted" in reasons["locked_report.pdf"]
    assert "no text layer" in reasons["scanned_letter.pdf"]
    assert all(s.source in s.reason for s in skipped)
    # a date that cannot be parsed: indexed without a date; a sidecar that is not JSON: indexed without it
    assert by["undated_note.md"].meta.date == "" and by["undated_note.md"].meta.title == "Quarry reopening note"
    assert "undated_note.md: date ignored" in caplog.text and "sometime next spring" in caplog.text
    assert by["lighthouse.txt"].meta.date == "" and "ignored lighthouse.meta.json" in caplog.text
    for name in reasons:
        assert f"skipped {name}" in caplog.text


def test_uploads_take_the_same_formats_and_messages():
    pdf = (MIXED / "northwind_annual_report.pdf").read_bytes()
    doc = document_from_bytes("session/report.pdf", pdf)
    assert doc.pages and "Outlook" in doc.text and doc.meta.date == "2023-09-15"
    with pytest.raises(CorpusError, match="encrypted"):
        document_from_bytes("session/locked.pdf", (BAD / "locked_report.pdf").read_bytes())
    with pytest.raises(CorpusError, match="no article text"):
        document_from_bytes("session/broken.html", (BAD / "broken_page.html").read_bytes())
    md = document_from_bytes("session/k.md", (MIXED / "kestrel_launch.md").read_bytes())
    assert "**" not in md.text and md.meta.date == "2022-11-02"

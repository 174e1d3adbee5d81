"""Hybrid retrieval and sentence selection, with the hashing embedder: fast, no model."""
from pathlib import Path

from qa_bot.retrieve import DocumentInfo, fuse, lexical_terms
from qa_bot.structure import headings
from qa_bot.types import Chunk
from qa_bot.testing import mock_bot

NEWS = """GNU sed NEWS

* Noteworthy changes in release 4.6 (2018-12-19) [stable]

** New Features

  New option, --debug: print the input sed script in canonical form
  and annotate program execution.

* Noteworthy changes in release 4.5 (2018-03-31) [stable]

** Bug fixes

  sed now fails when given an invalid regex. Previously it crashed.
"""


def test_headings_are_found_without_markup_and_bullets_are_not_headings():
    found = [NEWS[a:b] for a, b in headings(NEWS)]
    assert found == ["GNU sed NEWS", "Noteworthy changes in release 4.6 (2018-12-19) [stable]", "New Features",
                     "Noteworthy changes in release 4.5 (2018-03-31) [stable]", "Bug fixes"]


def test_a_sentence_is_labelled_with_its_release_heading_and_section():
    info = DocumentInfo(lambda s: NEWS, lambda s: "sed NEWS")
    label, spans = info.label("sed.txt", NEWS.index("New option"))
    assert label == "sed NEWS — Noteworthy changes in release 4.6 (2018-12-19) [stable] — New Features"
    assert [NEWS[a:b] for a, b in spans][0].startswith("Noteworthy changes in release 4.6")
    label, _ = info.label("sed.txt", NEWS.index("sed now fails"))
    assert "release 4.5" in label and "Bug fixes" in label


def test_lexical_terms_spell_british_words_the_american_way():
    assert lexical_terms("What licence did OpenSSL switch to?") == lexical_terms("What license did OpenSSL switch to?")


def test_lexical_terms_stem_and_keep_numbers():
    terms = lexical_terms("Which sed release added the --debug options in 4.6?")
    assert "option" in terms and "debug" in terms and "4.6" in terms and "which" not in terms


def test_bm25_finds_the_document_named_by_its_title(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "sed_NEWS.txt").write_text(NEWS, encoding="utf-8")
    (corpus / "grep_NEWS.txt").write_text(NEWS.replace("sed", "grep").replace("4.6", "3.2").replace("4.5", "3.1"), encoding="utf-8")
    bot = mock_bot(corpus, tmp_path / "cache")
    hits = bot.retrieve("In grep 3.2, what does --debug do?", k=2)
    assert hits[0].chunk.source == "grep_NEWS.txt"
    sents = bot.retriever.sentences("In grep 3.2, what does --debug do?", hits, 2)
    assert sents and all(s.text == bot.document_text(s.source)[s.start:s.end] for s in sents)
    debug = [s for s in sents if "--debug" in s.text]
    assert debug and "release 3.2" in debug[0].label and "New Features" in debug[0].label


CHANGES = """This is a short account of the changes made in tool-3.4 since
the release of tool-3.3.  The manual has the details.

1. New Features

a. The parser now reads nested groups. This makes long scripts
   far quicker to check.

b. A new option, --quiet, hides warnings.

-------------------------------------------------------------------------------
This is a short account of the changes made in tool-3.3 since
the release of tool-3.2.

1. New Features

a. Sizes above 64K are read in blocks.
"""

LICENCE = """                       EXAMPLE PUBLIC LICENSE
                        Version 4, 2 May 2031

 Copyright (C) 2031 Nobody.
 Everyone may copy it.

  3. Termination.

  You may not ... within 30 days of notice.
"""


def test_a_part_opening_that_names_a_release_scopes_what_follows_and_list_items_are_not_headings():
    found = [CHANGES[a:b] for a, b in headings(CHANGES)]
    assert found[0] == "This is a short account of the changes made in tool-3.4 since"
    assert "This is a short account of the changes made in tool-3.3 since" in found
    assert not any(h.startswith(("a.", "b.")) for h in found)  # lettered items with a hanging indent
    info = DocumentInfo(lambda s: CHANGES, lambda s: "tool NEWS")
    # the section number "1." names no release: the release above it is in the label
    assert "tool-3.4" in info.label("t", CHANGES.index("--quiet"))[0]
    label = info.label("t", CHANGES.index("Sizes above"))[0]
    assert "tool-3.3 since" in label and "tool-3.4" not in label


def test_a_centred_title_block_is_a_heading_and_names_the_version_of_every_section():
    found = [LICENCE[a:b] for a, b in headings(LICENCE)]
    assert found[:2] == ["EXAMPLE PUBLIC LICENSE", "Version 4, 2 May 2031"]
    label = DocumentInfo(lambda s: LICENCE, lambda s: "Example licence").label("l", LICENCE.index("within 30"))[0]
    assert label == "Example licence — Version 4, 2 May 2031 — 3. Termination."


PALLETS = """Version 2.2.0
-------------

Released 2024-04-16

-   Drop support for Python 3.7.

Version 1.0.0
-------------

Released 2018-10-18

YANKED

Note: This release was yanked from PyPI because it changed the default
algorithm to SHA-512.
"""


def test_a_version_heading_and_the_date_heading_right_below_it_label_their_section_together():
    from qa_bot.formats_markup import rst_text

    text, _ = rst_text(PALLETS)
    info = DocumentInfo(lambda s: text, lambda s: "itsdangerous CHANGES")
    assert info.label("c", text.index("Drop support"))[0] == "itsdangerous CHANGES — Version 2.2.0 — Released 2024-04-16"
    # under a heading that names no release ("YANKED"), both release headings above it still name the section
    assert info.label("c", text.index("Note:"))[0] == "itsdangerous CHANGES — Version 1.0.0 — Released 2018-10-18 — YANKED"
    # two release headings with a sentence between them are two sections, not one
    news = "Version 3.1\n\nSome text here.\n\nReleased 2020-01-01\n\nA change.\n"
    assert "3.1" not in DocumentInfo(lambda s: news, lambda s: "t").label("t", news.index("A change"))[0]


def test_code_indented_four_columns_is_no_centred_title_nor_a_hash_heading():
    text = ("Usage\n\n    import tomli\n    toml_dict = tomli.loads(toml_str)\n\nThe loads function returns a dict.\n\n"
            "    # a comment in a shell sample\n    pip install tomli\n\nThat is all.\n")
    assert [text[a:b] for a, b in headings(text)] == ["Usage"]


def test_release_names_are_told_from_section_numbers_and_amounts():
    from qa_bot.structure import names_release
    assert names_release("Noteworthy changes in release 4.6") and names_release("Version 3, 29 June 2007")
    assert not names_release("8. Termination.") and not names_release("1.2. Definitions")
    # digits inside a name are no release: the release above such a heading labels its section
    for heading in ("Support HTTP/1.1", "New diff3 option:", "Use IDNA2008 through libidn2", "X11 Forwarding"):
        assert not names_release(heading), heading
    assert names_release("features added to bash-5.2 since") and names_release("Release v2")
    news = "wget NEWS\n\n* Changes in Wget 1.13.3\n\n** Support HTTP/1.1\n\n** Now by default GNU TLS.\n"
    assert "Wget 1.13.3" in DocumentInfo(lambda s: news, lambda s: "wget NEWS").label("w", news.index("Now by"))[0]
    # a part opening that names an amount is not a release heading
    text = "Revenue rose to 2.7 billion dollars in the\nquarter, it said.\n"
    assert headings(text) == []


SED_TWO = """GNU sed NEWS

* Noteworthy changes in release 4.6 (2018-12-19) [stable]

** New Features

  New option, --debug: print the input sed script in canonical form.

  New option, --sandbox: reject programs with r/w/e commands.

* Noteworthy changes in release 4.5 (2018-03-31) [stable]

** New Features

  New option, --posix: disable GNU extensions.
"""


def _sed_bot(tmp_path, **kw):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "sed_NEWS.txt").write_text(SED_TWO, encoding="utf-8")
    return mock_bot(corpus, tmp_path / "cache", **kw)


def test_sentences_a_rule_rejects_come_after_the_ones_it_accepts(tmp_path):
    bot = _sed_bot(tmp_path)
    q = "Which new option did sed get?"
    hits = bot.retrieve(q, k=4)
    plain = bot.retriever.sentences(q, hits, 20)
    ruled = bot.retriever.sentences(q, hits, 20, usable=lambda s, doc: "4.5" in s.label)
    assert {s.start for s in ruled} == {s.start for s in plain}
    flags = ["4.5" in s.label for s in ruled]
    assert any(flags) and not all(flags) and flags == sorted(flags, reverse=True)
    # within each group, the plain order stands
    assert [s.start for s in ruled if "4.5" not in s.label] == [s.start for s in plain if "4.5" not in s.label]


def test_the_reader_sees_first_the_sentences_under_the_release_the_question_names(tmp_path):
    from qa_bot import constraints

    bot = _sed_bot(tmp_path, reader_sentences=2, reader_whole=False, reader_tokens=0)
    q = "Which sed 4.5 option handles the input sed script?"  # ranked alone, 4.6's --debug sentence comes first
    hits = bot.retrieve(q, k=4)
    doc = bot.document_text("sed_NEWS.txt")
    fits = {s.text: not constraints.constraints_missing_around(q, s, doc) for s in bot.retriever.sentences(q, hits, 20)}
    assert fits["New option, --posix: disable GNU extensions."] and not any(v for k, v in fits.items() if "--debug" in k or "--sandbox" in k)
    bot.ask(q)
    shown = bot.llm.prompts[-1][-1]
    assert "--posix" in shown and "--debug" not in shown and "--sandbox" not in shown



OPENSSL = """NEWS

### Major changes between OpenSSL 3.0.0 and OpenSSL 3.0.1 [14 Dec 2021]

  * Fixed invalid handling of X509_verify_cert() internal errors in libssl.

### Major changes between OpenSSL 1.1.1 and OpenSSL 3.0.0 [7 sep 2021]

  * Changed the licence to the Apache License v2.0.
"""


def test_a_heading_line_naming_a_release_is_not_labelled_with_the_release_above_it(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "openssl_NEWS.txt").write_text(OPENSSL, encoding="utf-8")
    (corpus / "wget_NEWS.txt").write_text("GNU Wget NEWS\n\n* Changes in Wget 1.19.3\n\n* Prevent erroneous "
                                          "decompression of .gz files\n\n* Added support for HTTP 308 Permanent "
                                          "Redirect response\n\n* Fix a segfault\n", encoding="utf-8")
    bot = mock_bot(corpus, tmp_path / "cache")
    q = "When did OpenSSL 3.0.0 come out?"
    sents = bot.retriever.sentences(q, bot.retrieve(q, k=4), 20)
    line = next(s for s in sents if s.text.startswith("### Major changes between OpenSSL 1.1.1"))
    assert "3.0.1" not in line.label and line.headings == ()  # 3.0.1's heading is the release above, not its section
    item = next(s for s in sents if "Apache" in s.text)
    assert item.label.endswith("OpenSSL 3.0.0 [7 sep 2021] (Major changes since OpenSSL 1.1.1)")
    # "HTTP 308" is a number, not a release: that line stays labelled with the release above it
    q = "Which wget release added support for HTTP 308?"
    line = next(s for s in bot.retriever.sentences(q, bot.retrieve(q, k=4), 20) if "308" in s.text)
    assert "Changes in Wget 1.19.3" in line.label


def test_a_changes_between_heading_names_the_release_it_describes_first():
    from qa_bot.structure import release_first

    assert release_first("Major changes between OpenSSL 1.1.0i and OpenSSL 1.1.1 [11 Sep 2018]") == \
        "OpenSSL 1.1.1 [11 Sep 2018] (Major changes since OpenSSL 1.1.0i)"
    assert release_first('Major changes between "less" versions 530 and 551') == '551 (Major changes since "less" versions 530)'
    assert release_first("Between 2.2 and 2.3") == "2.3 (since 2.2)"
    # A crafted line took minutes with a single pattern of nested lazy groups; string steps take microseconds.
    # In a child process: a regex holds the GIL, so a thread's join(timeout) would wait it out.
    import subprocess
    import sys

    crafted = "Changes between 1 " + "and 1 " * 300 + "["
    code = "import sys; from qa_bot.structure import release_first; print(release_first(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, crafted], capture_output=True, text=True, timeout=30, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.rstrip("\n") == "1 [ (Changes since 1" + " and 1" * 299 + ")"
    for other in ("Noteworthy changes in release 4.6", "Differences between GPL and LGPL", "Version 3, 29 June 2007"):
        assert release_first(other) == other
    info = DocumentInfo(lambda s: OPENSSL, lambda s: "openssl NEWS")
    label, spans = info.label("openssl_NEWS.txt", OPENSSL.index("Changed the licence"))
    assert label == "openssl NEWS — OpenSSL 3.0.0 [7 sep 2021] (Major changes since OpenSSL 1.1.1)"
    assert OPENSSL[spans[-1][0]:spans[-1][1]].startswith("Major changes between")  # the citation stays the file's text


def _chunks(names: str) -> list[Chunk]:
    return [Chunk(n, "doc.txt", i, i + 1, n) for i, n in enumerate(names.split())]


def test_fusion_keeps_each_rankings_first_chunks_even_when_the_other_ranking_misses_them():
    # "v6" is BM25's first chunk (an exact version) that dense search never finds; plain RRF ranks it below
    # every chunk both sides find, however low (1/61 < 2/90).
    dense = _chunks(" ".join(f"c{i}" for i in range(30)))
    lexical = [Chunk("v6", "doc.txt", 99, 100, "v6"), *dense[:29]]
    plain = [h.chunk.id for h in fuse(dense, lexical, 6)]
    assert plain == ["c0", "c1", "c2", "c3", "c4", "c5"]
    kept = [h.chunk.id for h in fuse(dense, lexical, 6, keep=2)]
    assert set(kept) == {"c0", "c1", "c2", "c3", "c4", "v6"}  # the weakest fused chunk makes room
    scores = [h.score for h in fuse(dense, lexical, 6, keep=2)]
    assert scores == sorted(scores, reverse=True)


def test_fusion_never_returns_more_than_k():
    dense, lexical = _chunks("a b c d"), _chunks("e f g h")
    assert len(fuse(dense, lexical, 3, keep=3)) == 3
    assert [h.chunk.id for h in fuse(dense, dense, 2, keep=0)] == ["a", "b"]


def test_building_bm25_logs_no_debug_lines(tmp_path, caplog):
    # bm25s sets its logger to DEBUG: its "Building index from tokens" reached every `qa-bot ask`'s stderr.
    import logging

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "sed_NEWS.txt").write_text(NEWS, encoding="utf-8")
    bot = mock_bot(corpus, tmp_path / "cache")
    with caplog.at_level(logging.DEBUG):  # capture everything; only bm25s's own level can keep its lines out
        bot.retrieve("What does --debug do?", k=1)
    assert not [r for r in caplog.records if r.name.startswith("bm25s") and r.levelno < logging.WARNING]


def test_pages_of_sentences_follow_each_other_within_the_bounds():
    from types import SimpleNamespace

    from qa_bot.retrieve import paginate

    ranked = [SimpleNamespace(text="x" * n) for n in (300, 300, 300, 100, 500, 50, 50, 50)]
    pages = paginate(ranked, 3, 700, 3)
    # 300+300 then a third 300 would pass 700: the page ends and the next starts with it; never fewer than two.
    assert [[len(x.text) for x in page] for page in pages] == [[300, 300], [300, 100], [500, 50, 50]]
    assert [x for page in pages for x in page] == ranked[:7]  # in rank order, none skipped or repeated
    assert paginate(ranked, 3, None, 2) == [ranked[:3], ranked[3:6]]
    assert paginate(ranked[:2], 3, 700, 2) == [ranked[:2], []]  # the sentences ran out

"""Hybrid retrieval and sentence selection, with the hashing embedder: fast, no model."""
from qa_bot.retrieve import DocumentInfo, headings, lexical_terms
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

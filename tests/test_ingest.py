import pytest

from qa_bot.cite import sentence_spans
from qa_bot.errors import CorpusError
from qa_bot.ingest import chunk_text, load_corpus
from qa_bot.testing import HashEmbedder

from conftest import ARTICLE


def _chunks(text, max_chars=400, max_tokens=256, count=lambda t: len(t.split()) + 2):
    return chunk_text(text, "doc.txt", max_chars=max_chars, max_tokens=max_tokens, count_tokens=count)


def test_offsets_are_exact_on_the_article_as_on_disk():
    text = ARTICLE.read_bytes().decode("utf-8")
    chunks = _chunks(text)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert len(c.text) <= 400 or len(sentence_spans(c.text)) == 1
    # chunks are in order, do not overlap, and miss only white space between them
    for a, b in zip(chunks, chunks[1:]):
        assert a.end <= b.start and not text[a.end:b.start].strip()


def test_offsets_survive_crlf_unicode_and_blank_lines():
    text = "Ünïcode “quotes” here.\r\nSecond line — dash. Third!\r\n\r\n\tNew paragraph? Yes 😀 emoji.  "
    chunks = _chunks(text, max_chars=30)
    assert [text[c.start:c.end] == c.text for c in chunks] == [True] * len(chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == "".join(text.split())


def test_sentences_are_not_split_inside_abbreviations():
    spans = sentence_spans("Tensions between the U.S. and China grew. Then it ended.")
    assert len(spans) == 2


@pytest.mark.parametrize("text, n", [
    ("Program: GNU bc\nAuthor: Philip A. Nelson\nE-mail: phil@example.org", 1),  # a name's initial
    ("See Brian W. Kernighan and P. J. Plauger's book. It explains ed.", 2),
    ("Fixed in release 1.2 (S. Gilles). Thanks.", 2),
    # a variable or option that ends a sentence still ends it: no space before it, or two after it
    ("The umask applies when creating B.  Also, cp copies it.", 2),
    ("It works with -R. Windows builds too.", 2),
    ("Use the new format specifier: %Q. This acts like %q.", 2),
])
def test_a_name_initial_does_not_end_a_sentence_but_a_lone_variable_does(text, n):
    assert len(sentence_spans(text)) == n


def test_each_bulleted_item_is_a_sentence_of_its_own():
    # a changelog's list: items open with a bullet after white space, not with a capital
    text = ("* Improvements\n  * Enhanced decoding of ioctl commands.\n  * Updated lists of BPF_*,\n"
            "    KVM_* constants\n  - CVE-2024-2398: the limit (1000) of\n    headers\n  + Ported to X11\n"
            "  • Faster")
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ["* Improvements", "* Enhanced decoding of ioctl commands.",
                         "* Updated lists of BPF_*,\n    KVM_* constants",
                         "- CVE-2024-2398: the limit (1000) of\n    headers", "+ Ported to X11", "• Faster"]


def test_a_line_of_references_stays_with_the_sentence_it_follows():
    text = ("* Fix a buffer overflow in variable expansions.\n    CVE-2023-24056\n* Fix tildes.\n\n"
            "This bug could trick GPGME.  [T6027, CVE-2022-34903]\n\nVarious man page fixes.\n[#59745, #59330]\n\n"
            "Fix shell completion. 2581\n\n[#1]\n\nCVE-2024-7264 - ASN.1 date parser overread.")
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ["* Fix a buffer overflow in variable expansions.\n    CVE-2023-24056", "* Fix tildes.",
                         "This bug could trick GPGME.  [T6027, CVE-2022-34903]",
                         "Various man page fixes.\n[#59745, #59330]", "Fix shell completion. 2581",
                         "[#1]",  # after a blank line: a paragraph of its own
                         "CVE-2024-7264 - ASN.1 date parser overread."]  # a sentence that opens with a reference


@pytest.mark.parametrize("text", [
    "licensed under version\n2. or any later version",  # a wrapped sentence, not a numbered list
    "options such as\n--verbose and -q",                 # an option, not a bullet
    "a *bold*\n*emphasis* and x\n-1 below zero",         # markup and a negative number
])
def test_a_line_opening_with_a_number_option_or_markup_is_not_a_bullet(text):
    assert len(sentence_spans(text)) == 1


def test_no_chunk_exceeds_the_token_limit_even_for_one_huge_sentence():
    emb = HashEmbedder()
    text = "word " * 1000 + "end."
    chunks = _chunks(text, max_tokens=50, count=emb.count_tokens)
    assert len(chunks) >= 20
    assert max(emb.count_tokens(c.text) for c in chunks) <= 50
    assert all(text[c.start:c.end] == c.text for c in chunks)


def test_real_tokenizer_limit_is_respected():
    from qa_bot.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    text = ("Supercalifragilisticexpialidocious antidisestablishmentarianism " * 200) + "."
    chunks = _chunks(text, max_chars=100000, max_tokens=256, count=emb.count_tokens)
    assert len(chunks) > 1
    assert max(emb.count_tokens(c.text) for c in chunks) <= 256


def test_load_corpus_skips_bad_files_and_names_them(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("A fine document. It has two sentences.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x01")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "nested.md").write_text("# Nested\nText.", encoding="utf-8")
    docs, skipped = load_corpus(tmp_path, 1 << 20)
    assert sorted(d.source for d in docs) == ["good.txt", "sub/nested.md"]
    # notes.pdf: PDFs are read now (issue 11), and this one is not a readable PDF
    assert sorted(s.source for s in skipped) == ["binary.txt", "empty.txt", "latin1.txt", "notes.pdf"]
    assert all(s.source in s.reason for s in skipped)


def test_load_corpus_errors_are_clear(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "missing", 1000)
    (tmp_path / "big.txt").write_text("x" * 2000, encoding="utf-8")
    with pytest.raises(CorpusError, match="big.txt.*over"):
        load_corpus(tmp_path, 1000)


def test_document_title_from_sidecar_first_line_or_name(tmp_path, caplog):
    from qa_bot.ingest import Document, document_title

    def doc(source, text):
        return Document(source, text, "")

    (tmp_path / "a.meta.json").write_text('{"title": "  The  Sidecar Title "}', encoding="utf-8")
    assert document_title(doc("a.txt", "A first line\n\nBody."), tmp_path) == "The Sidecar Title"
    assert document_title(doc("mpl.txt", "# Mozilla Public License Version 2.0\n\nBody."), tmp_path) == \
        "Mozilla Public License Version 2.0 (mpl)"  # the name adds a word: kept after the first line
    assert document_title(doc("sed_news.txt", "This first line is a sentence, not a title.\n"), tmp_path) == "sed news"
    # A first line whose shape comes again further on heads the newest release, not the file: the name stands in
    news = "Noteworthy changes in release 6.1 (2022-12-12)\n\n* Fix.\n\nNoteworthy changes in release 6.0 (2022-10-29)\n"
    assert document_title(doc("strace_NEWS.txt", news), tmp_path) == "strace NEWS"
    assert document_title(doc("strace_NEWS.txt", news.split("\n\nNoteworthy")[0]), tmp_path) == \
        "Noteworthy changes in release 6.1 (2022-12-12) (strace NEWS)"  # once only: a title
    assert document_title(doc("grep_NEWS.txt", "GNU grep NEWS      -*- outline -*-\n\n* x"), tmp_path) == "GNU grep NEWS"
    # releases written differently ("(Feb 2023)", "(May 22, 2020)") are still a series: its opening recurs
    log = "v1.5.4 (Feb 2023)\nperf: faster\n\nv1.4.5  (May 22, 2020)\nfix: a crash\n"
    assert document_title(doc("zstd_changelog.txt", log), tmp_path) == "zstd changelog"
    # a version-control stamp or an editor's mode line is about the file, not the document
    readme = "-- $MawkId: README,v 1.6 2019/01/29 02:05:45 tom Exp $\n-- vile:txtmode fc=78\n\nmawk -- an awk\n"
    assert document_title(doc("mawk_README.txt", readme), tmp_path) == "mawk -- an awk (mawk README)"
    (tmp_path / "b.meta.json").write_text("[1, 2]", encoding="utf-8")
    assert document_title(doc("b.txt", "Weather Report\n\nRain."), tmp_path) == "Weather Report"  # "b" adds no word
    assert "ignored b.meta.json" in caplog.text

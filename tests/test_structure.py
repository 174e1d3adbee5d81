"""A document's structure (qa_bot.structure): found once when the document is made, then read by retrieval and
grounding from there."""
import pickle
from dataclasses import replace

from qa_bot import ingest
from qa_bot.ingest import Document
from qa_bot.retrieve import DocumentInfo
from qa_bot.structure import SECTION_SPAN, Structure
from qa_bot.testing import mock_bot

NEWS = """GNU sed NEWS

* Noteworthy changes in release 4.6 (2018-12-19)

** Bug fixes

  sed now fails when given an invalid regex. Previously it crashed.

* Noteworthy changes in release 4.5 (2018-03-31)

** New Features

  New option, --posix: disable GNU extensions.
"""
STORY = ("An earthquake measuring 4.1 has shaken the wheatbelt overnight. The epicentre was in Burakin, north-east "
         "of Perth. A spokesman says it occurred at about 12:30am.")


def test_a_section_runs_from_the_heading_above_to_the_next_and_a_story_is_one_section():
    s = Structure.of(NEWS)
    a, b = s.section(NEWS.index("sed now fails"))
    assert NEWS[a:b] == NEWS[NEWS.index("Bug fixes"):NEWS.index("Noteworthy changes in release 4.5")]
    assert s.section(NEWS.index("Bug fixes")) == (a, b)  # a heading line opens its own section
    a, b = s.section(NEWS.index("New option"))
    assert NEWS[a:b].startswith("New Features") and b == len(NEWS)
    story = Structure.of(STORY)
    assert story.headings == () and story.section(STORY.index("A spokesman")) == (0, len(STORY))


def test_the_headings_naming_a_section_are_its_own_and_the_release_above_it():
    s = Structure.of(NEWS)
    named = [NEWS[a:b] for a, b in s.headings_at(NEWS.index("New option"))]
    assert named == ["Noteworthy changes in release 4.5 (2018-03-31)", "New Features"]
    assert [NEWS[a:b] for a, b in s.headings_at(0)] == ["GNU sed NEWS"]
    text = "Some opening words here.\n\nUsage\n\nRun it.\n"
    assert Structure.of(text).headings_at(0) == ()  # above the first heading, nothing names the section


def test_the_lead_is_the_first_sentence_as_split_within_the_first_section_span():
    a, b = Structure.of(STORY).lead
    assert STORY[a:b] == "An earthquake measuring 4.1 has shaken the wheatbelt overnight."
    long = "word " * SECTION_SPAN + "end. Next sentence."
    assert Structure.of(long).lead[1] <= SECTION_SPAN  # a longer first sentence is cut where the split stops
    assert Structure.of("").lead is None and Structure.of("").section(0) == (0, 0)


def test_a_document_s_structure_is_made_with_it_and_comes_back_from_a_worker_process_without_a_new_parse(monkeypatch):
    doc = Document("n.txt", NEWS, "")
    assert doc.structure == Structure.of(NEWS)
    made = []
    monkeypatch.setattr(ingest.Structure, "of", classmethod(lambda cls, text: made.append(text) or Structure(len(text))))
    back = pickle.loads(pickle.dumps(doc))  # as CorpusStream's worker processes return documents
    assert back == doc and back.structure == doc.structure and back.structure.headings != () and made == []
    other = replace(doc, text=STORY)  # a new text: its own structure, not the old one's
    assert made == [STORY] and other.structure == Structure(len(STORY))


def test_retrieval_reads_the_stored_structure():
    asked = []
    stored = Structure.of(NEWS)
    info = DocumentInfo(lambda s: NEWS, lambda s: "sed NEWS", structure_of=lambda s: asked.append(s) or stored)
    label, _ = info.label("sed.txt", NEWS.index("New option"))
    assert label == "sed NEWS — Noteworthy changes in release 4.5 (2018-03-31) — New Features" and asked == ["sed.txt"]
    # a stored structure without headings labels with the title alone: the text is not parsed again
    info = DocumentInfo(lambda s: NEWS, lambda s: "sed NEWS", structure_of=lambda s: Structure(len(NEWS)))
    assert info.label("sed.txt", NEWS.index("New option")) == ("sed NEWS", ())


def test_shown_sentences_carry_their_section_and_lead_from_their_document_corpus_or_added(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "sed_NEWS.txt").write_text(NEWS, encoding="utf-8")
    bot = mock_bot(corpus, tmp_path / "cache")
    session = bot.add_document(None, "quake.txt", STORY.encode())
    session = bot.add_document(session, "other.txt", b"Another text about something else entirely, at length.")
    for kept in (session, bot.remove_document(session, "other.txt")):  # a session less one document keeps the rest's
        q = "What did the new option --posix disable, and when did the quake near Burakin strike?"
        shown = bot.retriever.sentences(q, bot.retrieve(q, session=kept), 20, kept)
        assert {s.source for s in shown} >= {"sed_NEWS.txt", "session/quake.txt"}
        for s in shown:
            doc = bot.document_text(s.source, kept)
            structure = Structure.of(doc)
            assert s.section == structure.section(s.start) and s.lead == structure.lead

"""Evaluation stage: metric functions on hand-made predictions, file validation, evidence location, run_eval."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import types
from pathlib import Path

import pytest

from conftest import ROOT
from qa_bot import REFUSAL, Answer, Chunk, Citation, Hit, QABotError, Settings
from qa_bot import eval as ev
from qa_bot import eval_questions as evq
from qa_bot import eval_score as evs
from qa_bot.errors import QuestionFileError

ARTICLE = "alibaba_cloud_spinoff.txt"


# ---------------------------------------------------------------- helpers


def q(qid="q1", question="Q?", answers=("6",), answerable=True, evidence="ev"):
    return {"id": qid, "question": question, "answers": list(answers), "answerable": answerable,
            "evidence": evidence}


def answer(text, *, abstained=False, cites=(), hits=(), timings=None):
    """cites/hits: (source, start, end[, text]) tuples."""
    citations = tuple(Citation(i, c[0], c[1], c[2], c[3] if len(c) > 3 else "x") for i, c in enumerate(cites, 1))
    retrieved = tuple(Hit(Chunk(f"c{i}", h[0], h[1], h[2], "x"), 0.9 - i / 10) for i, h in enumerate(hits))
    return Answer("Q?", text, abstained, citations, retrieved, timings or {"retrieve": 0.1, "total": 0.5})


def refusal(**kw):
    return answer(REFUSAL, abstained=True, **kw)


def rec(answerable=True, ans=None, span=("a.txt", 100, 200), answers=("6",), latency=1.0):
    return evs.make_record(q(answers=answers, answerable=answerable, evidence="e" if answerable else None),
                          ans if ans is not None else answer("6 [1]"), latency, span if answerable else None)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- normalisation and matching


@pytest.mark.parametrize("answer_text, aliases, expected", [
    ("Alibaba split into six companies [1].", ["6"], True),       # number word -> digit
    ("It split into 6 companies.", ["six"], True),
    ("It split into 16 companies.", ["6"], False),                # token boundary: 6 is not inside 16
    ("It split into 6 companies.", ["16"], False),
    ("About 9% of revenues [2].", ["9 percent"], True),           # % on the answer side
    ("Nine percent of revenues.", ["9%"], True),                  # % on the gold side, number word
    ("It offers 40 per cent savings.", ["40%"], True),
    ("It ranked third largest in 2021.", ["3rd"], True),          # ordinal word
    ("It was the 3rd largest.", ["third largest"], True),         # article "the" dropped
    ("Revenue was $2.7 billion.", ["2.7 billion"], True),         # decimal point kept
    ("Revenue was $2.7 billion.", ["7 billion"], False),          # ... so 2.7 does not split into 2 and 7
    ("About 27 billion.", ["2.7 billion"], False),
    ("Twenty-one users.", ["21"], True),
    ("It has 1,000 users.", ["1000"], True),
    ("The “AWS+Slack+OpenAI” combination.", ["AWS+Slack+OpenAI"], True),
    ("Daniel Zhang’s company.", ["Daniel Zhang's"], True),        # curly vs straight apostrophe
    ("DINGTALK", ["Dingtalk"], True),
    ("Zhang [1]", ["Daniel Zhang"], False),                       # partial alias is not enough
    ("See [16]", ["16"], False),                                  # citation markers are not answer text
    ("The article does not say.", ["2014"], False),
    ("Anything at all", ["The", "", "!"], False),                 # aliases that normalise to nothing never match
    ("-A [1]", ["-A"], True),                                     # ... except as written: an option, not an article
    ("-A, not -E [1].", ["-A"], True),
    ("A new tool", ["-A"], False),
    ("The documents do not say.", ["The"], False),                # not as written either
])
def test_answer_matches(answer_text, aliases, expected):
    assert evs.answer_matches(answer_text, aliases) is expected


def test_normalize_tokens():
    assert evs.normalize_answer("The twenty first of a Hundred [3]") == "21st of hundred"
    assert evs.normalize_answer("six hundred million, ninety-nine") == "600 million 99"
    assert evs.normalize_answer("one two") == "1 2"  # two numbers, not 3
    assert evs.normalize_answer("Ｆｕｌｌwidth 9％") == "fullwidth 9 percent"  # NFKC


# ---------------------------------------------------------------- token F1, answer length, verbatim quotes

QUOTED_22_WORDS = ("“Alibaba Cloud accounted for about 9% of the group’s total revenue in the quarter, the company said "
                   "in its filing on Thursday.” [1]")


@pytest.mark.parametrize("text, core, words", [
    ("“Alibaba went public in 2014, the largest IPO.” [1]", "Alibaba went public in 2014, the largest IPO.", 8),
    ("In 2014 [1].", "In 2014.", 2),                               # trailing citation
    ("“It split” [1][2].", "It split.", 2),
    ("9% [1, 2]", "9%", 1),
    ("He said “yes” [1]", "He said “yes”", 3),                     # quotes that do not surround the answer stay
    ("6 companies [1] and 9 % [2] .", "6 companies and 9 %.", 4),  # a lone "%" or "." is not a word
    ("", "", 0),
])
def test_answer_core_and_count_words(text, core, words):
    assert evs.answer_core(text) == core
    assert evs.count_words(text) == words


@pytest.mark.parametrize("answer_text, aliases, expected", [
    ("9% [1]", ["9%"], 1.0),
    ("“9%” [1].", ["9 percent"], 1.0),                        # quotes, marker; % = percent
    (QUOTED_22_WORDS, ["9%"], 2 * 2 / (21 + 2)),             # 21 tokens ("the" dropped, group’s -> group s); 2 shared
    ("Daniel Zhang [1]", ["Zhang"], 2 * 1 / (2 + 1)),
    ("It split into six companies.", ["6", "six independent companies"], 2 * 2 / (5 + 3)),  # best alias
    ("6 6 6", ["6"], 2 * 1 / (3 + 1)),                       # overlap is a multiset
    ("The cloud", ["cloud"], 1.0),                           # articles dropped
    ("$2.7 billion", ["2.7 billion"], 1.0),
    ("27 billion", ["2.7 billion"], 2 * 1 / (2 + 2)),
    ("16 companies", ["6"], 0.0),
    ("Anything", ["The", ""], 0.0),                          # aliases with no token match only as written
    ("-A [1]", ["-A"], 1.0),                                 # "-A": an option, compared as written
    ("-A, not -E", ["-A"], 2 * 1 / (3 + 1)),
    ("[1]", ["1"], 0.0),                                     # markers are not answer text
])
def test_token_f1(answer_text, aliases, expected):
    assert evs.token_f1(answer_text, aliases) == pytest.approx(expected)


def test_is_verbatim_quote():
    hay = evs.quote_haystacks({
        "a.txt": "He said: “We are taking concrete steps towards unlocking value,” Zhang\n  said.",
        "b.md": "They call it “AWS+Slack+OpenAI” in the reports about the cloud arm today.",
    })
    assert evs.is_verbatim_quote("“We are taking concrete steps towards unlocking value.” [1]", hay)  # 8 words
    assert evs.is_verbatim_quote("WE ARE taking   concrete steps [1] towards unlocking value [2].", hay)
    assert evs.is_verbatim_quote("value,” Zhang said. [1]", hay) is False              # 3 words: too short
    assert evs.is_verbatim_quote("We are taking concrete steps towards unlocking [1]", hay) is False  # 7 words
    assert evs.is_verbatim_quote("We are taking big steps towards unlocking value [1]", hay) is False  # changed
    assert evs.is_verbatim_quote("They call it AWS+Slack+OpenAI in the reports about the cloud arm [1].", hay)
    assert evs.is_verbatim_quote("They call it AWS+Slack+OpenAI in the reports about the cloud arm [1].", []) is False


def test_answer_shape_metrics():
    err = evs.make_record(q(answers=["6"]), None, 0.1, ("a.txt", 100, 200), error="backend died")
    rows = [
        rec(ans=answer("six [1]")),                                   # f1 1, 1 word
        rec(ans=answer("It split into 16 companies [1].")),           # f1 0, 5 words
        rec(ans=refusal()),                                           # f1 0, not an answer given
        rec(ans=answer("Daniel Zhang [1]"), answers=["Zhang"]),       # f1 2/3, 2 words
        rec(answerable=False, ans=refusal()),                         # f1 1 (SQuAD 2.0)
        rec(answerable=False, ans=answer("It was 2014.")),            # f1 0, 3 words
        err,                                                          # f1 0, not an answer given
    ]
    assert [r["f1"] for r in rows] == pytest.approx([1, 0, 0, 2 / 3, 1, 0, 0])
    assert [r["answer_words"] for r in rows] == [1, 5, None, 2, None, 3, None]
    m = evs.compute_metrics(rows)
    assert m["token_f1"] == round((1 + 2 / 3) / 5, 4)             # 0.3333 over the 5 answerable
    assert m["token_f1_all"] == round((1 + 2 / 3 + 1) / 7, 4)     # 0.381 over all 7
    assert m["n_answered"] == 4 and m["answer_words_median"] == 2.5  # median of 1, 5, 2, 3
    assert m["verbatim_quote_share"] == 0.0                       # no corpus given to make_record
    none = evs.compute_metrics([rec(ans=refusal()), rec(answerable=False, ans=refusal())])
    assert none["answer_words_median"] is None and none["verbatim_quote_share"] is None
    assert none["token_f1"] == 0.0 and none["token_f1_all"] == 0.5


# ---------------------------------------------------------------- numbers and spans


def test_extract_numbers():
    assert evs.extract_numbers("$2.7 billion, 1,000 users, 9% in 2014. [3]") == ["2.7", "1000", "9", "2014"]


def test_unsupported_numbers():
    passages = ["The cloud business generated $2.7 billion in revenue", "split into six companies"]
    assert evs.unsupported_numbers("$2.7 billion [1]", passages) == []
    assert evs.unsupported_numbers("6 companies [2]", passages) == []          # "six" supports 6
    assert evs.unsupported_numbers("16 companies and 2.7 and 2.7 [2]", passages) == ["16"]
    assert evs.unsupported_numbers("2014", []) == ["2014"]                    # no citations: nothing supports it
    assert evs.unsupported_numbers("7 billion", passages) == ["7"]            # 7 is not inside 2.7


def test_overlaps_half_open_spans():
    e = {"source": "a.txt", "start": 100, "end": 200}
    assert evs.overlaps({"source": "a.txt", "start": 150, "end": 250}, e)
    assert evs.overlaps({"source": "a.txt", "start": 199, "end": 300}, e)
    assert evs.overlaps({"source": "a.txt", "start": 0, "end": 500}, e)   # containing
    assert not evs.overlaps({"source": "a.txt", "start": 200, "end": 300}, e)  # adjacent after
    assert not evs.overlaps({"source": "a.txt", "start": 0, "end": 100}, e)    # adjacent before
    assert not evs.overlaps({"source": "b.txt", "start": 150, "end": 160}, e)  # other file
    assert not evs.overlaps({"source": "a.txt", "start": 150, "end": 160}, None)


# ---------------------------------------------------------------- metrics


def test_retrieval_metrics():
    rows = [
        rec(ans=answer("6", hits=[("a.txt", 150, 250), ("a.txt", 0, 10)])),          # rank 1
        rec(ans=answer("6", hits=[("a.txt", 0, 100), ("a.txt", 199, 210)])),          # adjacent, then rank 2
        rec(ans=answer("6", hits=[("b.txt", 100, 200)] * 3 + [("a.txt", 100, 101)])),  # rank 4
        rec(ans=answer("6", hits=[("a.txt", 200, 300)])),                             # adjacent only: none
        rec(ans=answer("6", hits=[("a.txt", 100, 200)]), span=None),                  # evidence not found
        rec(answerable=False, ans=refusal(hits=[("a.txt", 100, 200)])),               # unanswerable: ignored
    ]
    assert [r["first_relevant_rank"] for r in rows[:4]] == [1, 2, 4, None]
    m = evs.compute_metrics(rows)
    assert m["n_retrieval_scored"] == 4 and m["evidence_not_found"] == 1
    assert m["recall@1"] == 0.25 and m["recall@3"] == 0.5 and m["recall@5"] == 0.75
    assert m["mrr"] == round((1 + 1 / 2 + 1 / 4) / 4, 4)


def test_accuracy_and_abstention():
    rows = [
        rec(ans=answer("six [1]")),                                   # right
        rec(ans=answer("16 [1]")),                                    # wrong
        rec(ans=refusal()),                                           # false refusal
        rec(ans=answer("It is 6", abstained=True)),                   # abstained never counts as right
        rec(ans=answer("6"), span=None),                              # right; counts though evidence not found
        rec(answerable=False, ans=refusal()),                         # right refusal
        rec(answerable=False, ans=answer("It was 2014.")),            # missed refusal
    ]
    assert [r["correct"] for r in rows] == [True, False, False, False, True, True, False]
    m = evs.compute_metrics(rows)
    assert (m["n_questions"], m["n_answerable"], m["n_unanswerable"]) == (7, 5, 2)
    assert m["answer_accuracy"] == 0.4
    assert m["refusal_recall"] == 0.5
    assert m["false_refusal_rate"] == 0.4
    # abstain: tp=1 fp=2 fn=1 -> 2/5; answer: tp=3 fp=1 fn=2 -> 6/9
    assert m["abstention_macro_f1"] == round((2 / 5 + 6 / 9) / 2, 4)


def test_no_unanswerables_all_answered():
    m = evs.compute_metrics([rec(), rec(ans=answer("16"))])
    assert m["refusal_recall"] is None and m["false_refusal_rate"] == 0.0
    assert m["abstention_macro_f1"] == 1.0  # "abstain" has no gold and no predicted member: excluded


def test_no_unanswerables_some_abstained():
    m = evs.compute_metrics([rec(), rec(ans=refusal())])
    # abstain: tp=0 fp=1 fn=0 -> 0; answer: tp=1 fp=0 fn=1 -> 2/3
    assert m["abstention_macro_f1"] == round((0 + 2 / 3) / 2, 4)


def test_all_abstained():
    rows = [rec(ans=refusal()), rec(ans=refusal()), rec(answerable=False, ans=refusal())]
    m = evs.compute_metrics(rows)
    assert m["answer_accuracy"] == 0.0 and m["false_refusal_rate"] == 1.0 and m["refusal_recall"] == 1.0
    # abstain: tp=1 fp=2 fn=0 -> 2/4; answer: tp=0 fn=0 fp=2 -> 0
    assert m["abstention_macro_f1"] == 0.25
    assert m["citation_precision"] is None and m["citation_recall"] is None and m["n_citation_scored_answers"] == 0
    assert m["unsupported_numbers"] == 0


def test_citation_metrics():
    rows = [
        rec(ans=answer("6 [1][2]", cites=[("a.txt", 150, 250), ("a.txt", 200, 300)])),  # 1 of 2 relevant
        rec(ans=answer("6", cites=[])),                                                # answered, no citations
        rec(ans=answer("16 [1]", cites=[("a.txt", 0, 101)])),                           # wrong but cites evidence
        rec(ans=answer("6 [1]", cites=[("a.txt", 0, 100)])),                            # adjacent: not relevant
        rec(ans=refusal()),                                                            # abstained: excluded
        rec(ans=answer("6 [1]", cites=[("a.txt", 100, 200)]), span=None),              # evidence unknown: excluded
        rec(answerable=False, ans=answer("6 [1]", cites=[("a.txt", 100, 200)])),       # unanswerable: excluded
    ]
    m = evs.compute_metrics(rows)
    assert m["n_citation_scored_answers"] == 4 and m["n_citations"] == 4
    assert m["citation_precision"] == 0.5  # 2 relevant of 4 citations
    assert m["citation_recall"] == 0.5     # 2 of 4 answers cite the evidence


def test_unsupported_numbers_metric_and_latency():
    rows = [
        rec(ans=answer("$2.7 billion in 2023 [1]", cites=[("a.txt", 100, 200, "generated $2.7 billion")],
                       timings={"retrieve": 0.1, "generate": 1.0, "total": 1.2}), latency=1.0),
        rec(ans=answer("16 companies", timings={"retrieve": 0.3, "total": 2.0}), latency=2.0),
        rec(answerable=False, ans=refusal(), latency=3.0),  # numbers in a refusal never count
        rec(answerable=False, ans=answer("In 1999 [1]", cites=[("a.txt", 0, 5, "1999 x")]), latency=5.0),
    ]
    m = evs.compute_metrics(rows)
    assert rows[0]["unsupported_numbers"] == ["2023"] and rows[1]["unsupported_numbers"] == ["16"]
    assert m["unsupported_numbers"] == 2
    assert m["latency_p50_s"] == 2.5 and m["latency_p95_s"] == pytest.approx(4.7)
    assert m["stage_latency"]["generate"] == {"p50_s": 1.0, "p95_s": 1.0}  # only the row that reports it
    assert m["stage_latency"]["retrieve"]["p50_s"] == 0.1  # median of 0.1, 0.3, 0.1 (refusal()), 0.1


def test_questions_without_evidence_are_left_out_of_retrieval_and_citation_metrics():
    no_ev = evs.make_record(q(evidence=None), answer("6 [1]", cites=[("a.txt", 100, 200)], hits=[("a.txt", 100, 200)]),
                           1.0, None)
    rows = [
        rec(ans=answer("6 [1]", cites=[("a.txt", 0, 10)], hits=[("a.txt", 0, 10), ("a.txt", 150, 160)])),  # rank 2
        rec(ans=answer("6"), span=None),  # evidence given but not found
        no_ev, no_ev,                     # no evidence: not "not found", and not scored
    ]
    m = evs.compute_metrics(rows)
    assert (m["n_answerable"], m["n_with_evidence"], m["evidence_not_found"], m["n_retrieval_scored"]) == (4, 2, 1, 1)
    assert m["recall@1"] == 0.0 and m["recall@3"] == 1.0 and m["mrr"] == 0.5
    assert m["n_citation_scored_answers"] == 1 and m["citation_precision"] == 0.0 and m["citation_recall"] == 0.0
    assert m["answer_accuracy"] == 1.0  # answers are scored whatever the evidence


def test_error_row_is_wrong_not_refusal():
    r = evs.make_record(q(answerable=False, evidence=None), None, 0.2, None, error="question too long")
    assert r["abstained"] is False and r["correct"] is False and r["answer"] == ""
    assert evs.compute_metrics([r])["n_errors"] == 1


# ---------------------------------------------------------------- question file validation


def test_load_questions_ok():
    qs = evq.load_questions(ROOT / "eval" / "article_qa.jsonl")
    assert len(qs) == 24 and sum(not x["answerable"] for x in qs) == 3


@pytest.mark.parametrize("rows, message", [
    (['{"id": "a", "question": "x?", "answers": ["1"], "answerable": true, "evidence": "e"}', "{not json"],
     "line 2: invalid JSON"),
    ([{"id": "a", "question": "x?", "answers": ["1"]}], "line 1: missing field(s) answerable"),
    (["", {"id": "a", "question": "x?", "answerable": True}], "line 2: missing field(s) answers"),
    ([{"question": "x?", "answers": [], "answerable": False}], "line 1: missing field(s) id"),
    (["[1, 2]"], "line 1: expected a JSON object"),
    ([{"id": "a", "question": "x?", "answers": "1", "answerable": True, "evidence": "e"}], "'answers' must be"),
    ([{"id": "a", "question": "x?", "answers": ["1"], "answerable": "yes", "evidence": "e"}], "'answerable' must"),
    ([{"id": "a", "question": "x?", "answers": [], "answerable": True, "evidence": "e"}], "needs at least one"),
    ([{"id": "a", "question": " ", "answers": [], "answerable": False, "evidence": None}], "'question' must"),
    ([{"id": "a", "question": "x?", "answers": ["1"], "answerable": True, "evidence": 7}], "'evidence' must"),
    ([{"id": "a", "question": "x?", "answers": ["1"], "answerable": True, "source": 3}], "line 1: 'source' must"),
    ([{"id": "a", "question": "x?", "answers": ["1"], "answerable": True, "source": ["a.txt"]}], "'source' must"),
    ([{"id": "a", "question": "x?", "answers": ["1"], "answerable": True, "source": " "}], "'source' must"),
    ([q("a"), q("a")], "line 2: duplicate id"),
    ([], "holds no questions"),
])
def test_load_questions_errors(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "qs.jsonl", rows)
    with pytest.raises(QuestionFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evq.load_questions(path)


def test_load_questions_missing_file(tmp_path):
    with pytest.raises(QuestionFileError, match="not found"):
        evq.load_questions(tmp_path / "nope.jsonl")


def test_question_format_doc_examples_load(tmp_path):
    doc = (ROOT / "docs" / "question_format.md").read_text(encoding="utf-8")
    example = doc.split("```json\n")[1].split("```")[0]
    qs = evq.load_questions(write_jsonl(tmp_path / "doc.jsonl", example.splitlines()))
    assert [x["id"] for x in qs] == ["dev03", "dev22", "u1", "s02"]
    corpus = evq.read_corpus(ROOT / "eval" / "sample_corpus")
    assert evq.locate_evidence(qs[3]["evidence"], corpus, qs[3]["source"])[0] == "harbour_ferries.txt"


def test_load_questions_optional_evidence_and_source(tmp_path):
    path = write_jsonl(tmp_path / "qs.jsonl", [
        {"id": "a", "question": "x?", "answers": ["1"], "answerable": True},                      # no evidence field
        {"id": "b", "question": "y?", "answers": ["2"], "answerable": True, "evidence": None},
        {"id": 3, "question": "z?", "answers": ["3"], "answerable": True, "evidence": "e", "source": "./sub/b.md"},
        {"id": "d", "question": "w?", "answers": [], "answerable": False, "source": None},
    ])
    qs = evq.load_questions(path)
    assert [(x["id"], x["evidence"], x["source"]) for x in qs] == [
        ("a", None, None), ("b", None, None), ("3", "e", "sub/b.md"), ("d", None, None)]


# ---------------------------------------------------------------- evidence location


def test_locate_evidence_exact_and_relative_posix_source(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("Intro. The cloud made $2.7 billion.\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("Nothing here.", encoding="utf-8")
    (tmp_path / "c.pdf").write_text("The cloud made $2.7 billion.", encoding="utf-8")  # not a corpus file
    corpus = evq.read_corpus(tmp_path)
    assert sorted(corpus) == ["a.txt", "sub/b.md"]
    assert evq.locate_evidence("The cloud made $2.7 billion", corpus) == ("sub/b.md", 7, 34)


def test_evidence_copied_with_markdown_or_rst_markup_is_found_in_the_readable_text(tmp_path):
    (tmp_path / "HISTORY.md").write_text("## 2.31.0\n\nSee [CVE-2023-32681](https://nvd.example/CVE-2023-32681) "
                                         "and **upgrade**.\n", encoding="utf-8")
    (tmp_path / "CHANGES.rst").write_text("3.7 (2024-04-11)\n++++++++++++++++\n\n- Remove ``pyparsing``.\n",
                                          encoding="utf-8")
    corpus = evq.read_corpus(tmp_path)
    src, a, b = evq.locate_evidence("[CVE-2023-32681](https://nvd.example/CVE-2023-32681) and **upgrade**", corpus)
    assert (src, corpus[src][a:b]) == ("HISTORY.md", "CVE-2023-32681 and upgrade")
    src, a, b = evq.locate_evidence("3.7 (2024-04-11)\n++++++++++++++++\n\n- Remove ``pyparsing``.", corpus, "CHANGES.rst")
    assert corpus[src][a:b] == "3.7 (2024-04-11)\n\n- Remove pyparsing."
    assert evq.locate_evidence("- Remove ``pyparsing``.", {"notes.txt": "- Remove pyparsing."}) is None  # plain text: as written


def test_locate_evidence_normalised_maps_back_to_original_offsets():
    text = "Alibaba’s   Dingtalk,\nan   enterprise app."
    corpus = {"x.txt": text}
    src, start, end = evq.locate_evidence("alibaba's Dingtalk, an enterprise", corpus)
    assert src == "x.txt" and text[start:end] == "Alibaba’s   Dingtalk,\nan   enterprise"
    assert evq.locate_evidence("“AWS+Slack+OpenAI”", {"y.txt": 'as "AWS+Slack+OpenAI".'}) == ("y.txt", 3, 21)
    assert evq.locate_evidence("not in the article", corpus) is None
    # "İ".lower() is two characters; offsets must still map back one-to-one
    text = "İİ Alibaba’s  cloud"
    src, start, end = evq.locate_evidence("alibaba's cloud", {"z.txt": text})
    assert text[start:end] == "Alibaba’s  cloud"
    assert evq.locate_evidence(None, corpus) is None


def test_locate_evidence_only_in_the_named_source():
    corpus = {"a.txt": "Fares: The ferry costs 3 euros.", "b.md": "Fares: The ferry costs 3 euros.",
              "c.txt": "Fares: the  FERRY costs 3 euros."}
    assert evq.locate_evidence("The ferry costs 3 euros", corpus) == ("a.txt", 7, 30)  # first file, sorted
    assert evq.locate_evidence("The ferry costs 3 euros", corpus, "b.md") == ("b.md", 7, 30)
    assert evq.locate_evidence("The ferry costs 3 euros", corpus, "c.txt") == ("c.txt", 7, 31)  # loose, same file
    assert evq.locate_evidence("The ferry costs 3 euros", {"a.txt": "x", "b.md": corpus["b.md"]}, "a.txt") is None
    assert evq.locate_evidence("The ferry costs 3 euros", corpus, "missing.txt") is None


def test_dev_set_evidence_is_all_located_verbatim():
    corpus = evq.read_corpus(ROOT / "docs_corpus")
    for x in evq.load_questions(ROOT / "eval" / "article_qa.jsonl"):
        if x["answerable"]:
            src, start, end = evq.locate_evidence(x["evidence"], corpus)
            assert corpus[src][start:end] == x["evidence"], x["id"]


def test_read_corpus_keeps_raw_offsets(tmp_path):
    (tmp_path / "w.txt").write_bytes("Line one.\r\nAlibaba’s cloud.\r\n".encode())
    (tmp_path / ".hidden.txt").write_text("Alibaba’s cloud.", encoding="utf-8")
    corpus = evq.read_corpus(tmp_path)
    assert list(corpus) == ["w.txt"]  # hidden files skipped, as the ingest stage does
    assert evq.locate_evidence("Alibaba’s cloud", corpus) == ("w.txt", 11, 26)  # \r\n counts as 2 characters


def test_read_corpus_missing_folder(tmp_path):
    with pytest.raises(QABotError, match="not found"):
        evq.read_corpus(tmp_path / "nope")


# ---------------------------------------------------------------- run_eval with a fake bot, and the CLI bits


class FakeBot:
    """Answers from a dict keyed by question; cites the span of `cite` in the corpus text."""

    def __init__(self, text: str, replies: dict[str, tuple[str, str | None]]):
        self.text, self.replies = text, replies

    def warm_up(self):
        self.warmed = True

    def ask(self, question):
        reply, cite = self.replies[question]
        if reply is None:
            return refusal()
        if reply == "boom":
            raise QABotError("backend died")
        i = self.text.index(cite)
        c = (ARTICLE, i, i + len(cite), cite)
        return answer(reply, cites=[c], hits=[(ARTICLE, 0, 10), c[:3]],
                      timings={"retrieve": 0.01, "generate": 0.02, "verify": 0.0, "total": 0.03})


def small_question_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "qs.jsonl", [
        q("d1", "When did Alibaba go public in New York?", ["2014"], True, "Alibaba went public in New York back in 2014"),
        q("d2", "How many companies?", ["six", "6"], True, "split itself into six independent companies"),
        q("d3", "How much revenue?", ["$2.7 billion"], True, "The cloud business generated $2.7 billion in revenue"),
        q("d4", "Who founded Alibaba?", [], False, None),
    ])


def test_run_eval_with_fake_bot(tmp_path):
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")
    bot = FakeBot(text, {
        "When did Alibaba go public in New York?": ("In 2014 [1].", "went public in New York back in 2014"),
        "How many companies?": ("16 companies [1].", "Rising tensions"),  # wrong, cites elsewhere
        "How much revenue?": (None, None),                                # false refusal
        "Who founded Alibaba?": ("Jack Ma in 1999 [1].", "Alibaba went public"),  # missed refusal
    })
    out = tmp_path / "run"
    m = ev.run_eval(small_question_file(tmp_path), bot=bot, corpus_dir=ROOT / "docs_corpus", out_dir=out,
                    progress=False)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d1", "d2", "d3", "d4"]
    assert [r["correct"] for r in rows] == [True, False, False, False]
    assert rows[0]["citations"][0]["source"] == ARTICLE and rows[0]["retrieved"][1]["score"] == 0.8
    assert m == json.loads((out / "metrics.json").read_text()) and m["warm_up_s"] >= 0
    assert m["answer_accuracy"] == round(1 / 3, 4) and m["refusal_recall"] == 0.0
    assert m["recall@1"] == 0.0 and m["recall@3"] == round(1 / 3, 4)  # only d1 retrieves the evidence (rank 2)
    assert m["citation_precision"] == 0.5 and m["unsupported_numbers"] == 2  # 16 (d2) and 1999 (d4)
    # "In 2014" vs "2014": 2 * 1 / (2 + 1); the other answers score 0
    assert [r["f1"] for r in rows] == pytest.approx([2 / 3, 0, 0, 0])
    assert m["token_f1"] == round(2 / 3 / 3, 4) and m["token_f1_all"] == round(2 / 3 / 4, 4)
    assert m["n_answered"] == 3 and m["answer_words_median"] == 2.0  # 2 (d1), 2 (d2), 4 (d4)
    assert m["verbatim_quote_share"] == 0.0
    report = (out / "report.md").read_text()
    assert "| Answer accuracy | 0.333 |" in report
    assert "| Token F1 (answerable) | 0.222 |" in report and "| Token F1 (all, SQuAD 2.0) | 0.167 |" in report
    assert "| Answer length (median words) | 2 |" in report and "| Verbatim-quote answers (share) | 0.000 |" in report
    wrong = report.split("## Wrong answers")[1].split("\n## ")[0]
    assert "- Answer: 16 companies [1].\n- Gold: six, 6\n- Token F1: 0.000\n" in wrong
    for heading, qid in [("## Wrong answers (1)", "d2"), ("## False refusals (1)", "d3"),
                         ("## Missed refusals (1)", "d4")]:
        section = report.split(heading)[1].split("\n## ")[0]
        assert f"### {qid}:" in section
    assert "Rising tensions" in report.split("## Wrong answers")[1]  # cited passage is shown


def test_run_eval_question_file_without_evidence_fields(tmp_path):
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")
    path = write_jsonl(tmp_path / "qs.jsonl", [
        {"id": "n1", "question": "When did Alibaba go public?", "answers": ["2014"], "answerable": True},
        {"id": "n2", "question": "How many companies?", "answers": ["6"], "answerable": True},
        {"id": "n3", "question": "Who founded Alibaba?", "answers": [], "answerable": False},
    ])
    bot = FakeBot(text, {"When did Alibaba go public?": ("In 2014 [1].", "back in 2014"),
                         "How many companies?": ("16 [1].", "Rising tensions"),
                         "Who founded Alibaba?": (None, None)})
    out = tmp_path / "run"
    m = ev.run_eval(path, bot=bot, corpus_dir=ROOT / "docs_corpus", out_dir=out, progress=False)
    assert (m["n_with_evidence"], m["evidence_not_found"], m["n_retrieval_scored"]) == (0, 0, 0)
    assert m["recall@1"] is None and m["mrr"] is None
    assert m["citation_precision"] is None and m["citation_recall"] is None and m["n_citation_scored_answers"] == 0
    assert m["answer_accuracy"] == 0.5 and m["refusal_recall"] == 1.0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["evidence"], r["evidence_span"], r["source"]) for r in rows] == [(None, None, None)] * 3
    report = (out / "report.md").read_text()
    assert "evidence given for 0 answerable, not found in the corpus for 0, so retrieval and citations scored " \
           "over 0" in report and "| Retrieval recall@1 | n/a |" in report


class ScriptedBot:
    """Returns a prepared Answer per question."""

    def __init__(self, answers: dict[str, Answer]):
        self.answers = answers

    def ask(self, question):
        return self.answers[question]


def two_file_corpus(tmp_path) -> Path:
    """Two files with the same sentence at the same offsets [7, 30)."""
    d = tmp_path / "corpus"
    (d / "news").mkdir(parents=True)
    (d / "a.txt").write_text("Fares: The ferry costs 3 euros. Boats run hourly.\n", encoding="utf-8")
    (d / "news" / "b.md").write_text("Fares: The ferry costs 3 euros. Trams are free.\n", encoding="utf-8")
    return d


def test_run_eval_multi_document_source(tmp_path):
    corpus = two_file_corpus(tmp_path)
    qs = write_jsonl(tmp_path / "qs.jsonl", [
        # same evidence text in both files; the question says it is the one in news/b.md
        {"id": "m1", "question": "Fare (b, cites a)?", "answers": ["3 euros"], "answerable": True,
         "evidence": "The ferry costs 3 euros", "source": "news/b.md"},
        {"id": "m2", "question": "Fare (b, cites b)?", "answers": ["3 euros"], "answerable": True,
         "evidence": "The ferry costs 3 euros", "source": "./news/b.md"},
        # no source: the evidence is located in the first file, a.txt, so citing a.txt is relevant
        {"id": "m3", "question": "Fare (any, cites a)?", "answers": ["3 euros"], "answerable": True,
         "evidence": "The ferry costs 3 euros"},
    ])
    in_a, in_b = ("a.txt", 7, 30), ("news/b.md", 7, 30)
    bot = ScriptedBot({
        "Fare (b, cites a)?": answer("3 euros [1]", cites=[in_a], hits=[in_a, ("news/b.md", 30, 48)]),
        "Fare (b, cites b)?": answer("3 euros [1]", cites=[in_b], hits=[in_a, in_b]),
        "Fare (any, cites a)?": answer("3 euros [1]", cites=[in_a], hits=[in_a]),
    })
    out = tmp_path / "run"
    m = ev.run_eval(qs, bot=bot, corpus_dir=corpus, out_dir=out, progress=False)
    rows = {r["id"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert rows["m1"]["evidence_span"] == {"source": "news/b.md", "start": 7, "end": 30}
    assert rows["m3"]["evidence_span"] == {"source": "a.txt", "start": 7, "end": 30}
    assert rows["m1"]["relevant_citations"] == [] and rows["m1"]["first_relevant_rank"] is None  # right span, wrong file
    assert rows["m2"]["relevant_citations"] == [1] and rows["m2"]["first_relevant_rank"] == 2
    assert rows["m3"]["relevant_citations"] == [1] and rows["m3"]["first_relevant_rank"] == 1
    assert m["citation_precision"] == round(2 / 3, 4) and m["citation_recall"] == round(2 / 3, 4)
    assert m["recall@1"] == round(1 / 3, 4) and m["recall@3"] == round(2 / 3, 4)
    assert m["answer_accuracy"] == 1.0


def test_run_eval_verbatim_quotes_and_f1(tmp_path):
    corpus = two_file_corpus(tmp_path)
    qs = write_jsonl(tmp_path / "qs.jsonl", [
        {"id": "v1", "question": "Fare?", "answers": ["3 euros"], "answerable": True},
        {"id": "v2", "question": "Fare, short?", "answers": ["3 euros"], "answerable": True},
    ])
    bot = ScriptedBot({
        "Fare?": answer("“Fares: The ferry costs 3 euros. Trams are free.” [1]"),  # copied from news/b.md, 9 words
        "Fare, short?": answer("3 euros [1]"),
    })
    out = tmp_path / "run"
    m = ev.run_eval(qs, bot=bot, corpus_dir=corpus, out_dir=out, progress=False)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["verbatim_quote"], r["answer_words"]) for r in rows] == [(True, 9), (False, 2)]
    # v1: 8 tokens (fares ferry costs 3 euros trams are free), 2 shared with "3 euros": 2 * 2 / (8 + 2)
    assert [r["f1"] for r in rows] == pytest.approx([0.4, 1.0])
    assert m["verbatim_quote_share"] == 0.5 and m["answer_words_median"] == 5.5 and m["token_f1"] == 0.7
    assert m["answer_accuracy"] == 1.0  # both contain the alias: accuracy alone cannot tell them apart


def test_run_eval_source_not_in_corpus(tmp_path, capsys, fake_pipeline):
    corpus = two_file_corpus(tmp_path)
    qs = write_jsonl(tmp_path / "qs.jsonl", [
        {"id": "m1", "question": "Fare?", "answers": ["3 euros"], "answerable": True, "source": "news/b.md"},
        {"id": "m2", "question": "Fare?", "answers": ["3 euros"], "answerable": True, "evidence": "x",
         "source": "b.md"},  # it is under news/
    ])
    with pytest.raises(QuestionFileError, match=r"qs.jsonl, line 2: source 'b.md' is not a usable .* corpus folder"):
        ev.run_eval(qs, bot=ScriptedBot({}), corpus_dir=corpus, out_dir=tmp_path / "run", progress=False)
    from qa_bot import cli

    assert cli.main(["eval", str(qs), "--corpus", str(corpus), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "line 2: source 'b.md'" in err and err.count("\n") == 1
    assert not getattr(fake_pipeline[0], "warmed", False)  # stopped before loading any model


@dataclasses.dataclass(frozen=True)
class FakeSettings:
    corpus_dir: Path
    cache_dir: Path = Path("/tmp/cache")
    top_k: int = 4
    llm_api_key_env: str = "MY_KEY_VAR"  # names containing "key" never reach metrics.json
    API_KEY: str = "sk-secret"


def test_run_eval_records_the_run(tmp_path, monkeypatch):
    loads = iter([(1.5, 1.0, 0.5), (2.25, 1.25, 0.75)])
    monkeypatch.setattr(os, "getloadavg", lambda: next(loads))
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")

    class DescribedBot(FakeBot):
        settings = FakeSettings(ROOT / "docs_corpus")

        def model_info(self):
            assert self.warmed  # asked after the warm-up, when the model is loaded
            return {"backend": "local", "model": "smol", "path": Path("/models/smol.gguf"), "sha256": "ab12",
                    "api_key": "sk-secret"}

    qs = small_question_file(tmp_path)
    bot = DescribedBot(text, {x["question"]: (None, None) for x in evq.load_questions(qs)})
    out = tmp_path / "run"
    m = ev.run_eval(qs, bot=bot, corpus_dir=ROOT / "docs_corpus", out_dir=out, progress=False)
    run = m["run"]
    assert run["questions"] == str(qs.resolve()) and run["corpus"] == str((ROOT / "docs_corpus").resolve())
    assert run["questions_sha256"] == __import__("hashlib").sha256(qs.read_bytes()).hexdigest()
    assert run["settings"] == {"corpus_dir": str(ROOT / "docs_corpus"), "cache_dir": "/tmp/cache", "top_k": 4}
    assert run["model"] == {"backend": "local", "model": "smol", "path": "/models/smol.gguf", "sha256": "ab12"}
    assert run["loadavg_start"] == [1.5, 1.0, 0.5] and run["loadavg_end"] == [2.25, 1.25, 0.75]
    assert run["python"] == platform.python_version() and run["cpu_count"] >= 1
    start, end = (datetime.datetime.fromisoformat(run[k]) for k in ("started_at", "finished_at"))
    assert start.tzinfo is not None and start <= end and run["wall_s"] >= 0
    saved = (out / "metrics.json").read_text()
    assert json.loads(saved) == m and "secret" not in saved and "MY_KEY_VAR" not in saved
    report = (out / "report.md").read_text()
    assert "Python " + platform.python_version() in report and "1-minute load 1.5 → 2.25" in report
    assert "Model: backend local, model smol, path /models/smol.gguf, sha256 ab12." in report


def test_run_record_without_settings_or_model_info(tmp_path):
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")
    qs = small_question_file(tmp_path)
    bot = FakeBot(text, {x["question"]: (None, None) for x in evq.load_questions(qs)})
    m = ev.run_eval(qs, bot=bot, corpus_dir=ROOT / "docs_corpus", out_dir=tmp_path / "run", progress=False)
    assert m["run"]["settings"] is None and m["run"]["model"] is None

    class Broken(FakeBot):
        settings = Settings(corpus_dir=ROOT / "docs_corpus")  # the real settings dataclass

        def model_info(self):
            raise RuntimeError("no model loaded")

    m = ev.run_eval(qs, bot=Broken(text, bot.replies), corpus_dir=ROOT / "docs_corpus", out_dir=tmp_path / "run2",
                    progress=False)
    assert m["run"]["model"] == {"error": "RuntimeError: no model loaded"}
    settings = m["run"]["settings"]
    assert settings["corpus_dir"] == str(ROOT / "docs_corpus") and settings["top_k"] == Settings().top_k
    assert not [k for k in settings if "key" in k] and "llm_model" in settings


def test_run_eval_records_bot_errors(tmp_path):
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")
    replies = {x["question"]: ("boom", None) for x in evq.load_questions(small_question_file(tmp_path))}
    m = ev.run_eval(tmp_path / "qs.jsonl", bot=FakeBot(text, replies), corpus_dir=ROOT / "docs_corpus",
                    out_dir=tmp_path / "run", progress=False)
    assert m["n_errors"] == 4 and m["answer_accuracy"] == 0.0 and m["refusal_recall"] == 0.0


def test_eval_arguments_and_thresholds():
    parser = ev.add_eval_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["qs.jsonl", "--min-accuracy", "0.8", "--min-abstention", "0.5"])
    assert args.questions == "qs.jsonl" and args.corpus is None and args.out is None
    assert args.min_citation_precision is None
    with pytest.raises(SystemExit):
        parser.parse_args(["qs.jsonl", "--min-accuracy", "1.5"])
    failures, notes = ev.check_thresholds({"answer_accuracy": 0.75, "refusal_recall": 0.5,
                                           "citation_precision": None}, args)
    assert failures == ["answer_accuracy 0.750 is below --min-accuracy 0.800"] and notes == []
    args.min_citation_precision = 0.5
    assert ev.check_thresholds({"answer_accuracy": 0.8, "refusal_recall": 0.5, "citation_precision": None},
                               args) == ([], ["citation_precision is n/a for this question set; "
                                              "--min-citation-precision not applied"])


def test_token_f1_and_false_refusal_thresholds():
    parser = ev.add_eval_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["qs.jsonl", "--min-token-f1", "0.5", "--max-false-refusal", "0.1"])
    assert (args.min_token_f1, args.max_false_refusal) == (0.5, 0.1)
    assert ev.check_thresholds({"token_f1": 0.5, "false_refusal_rate": 0.1}, args) == ([], [])  # limits pass
    assert ev.check_thresholds({"token_f1": 0.4999, "false_refusal_rate": 0.25}, args)[0] == [
        "token_f1 0.500 is below --min-token-f1 0.500",  # shown rounded, compared exactly
        "false_refusal_rate 0.250 is above --max-false-refusal 0.100"]
    assert ev.check_thresholds({"token_f1": None, "false_refusal_rate": None}, args) == ([], [
        "token_f1 is n/a for this question set; --min-token-f1 not applied",
        "false_refusal_rate is n/a for this question set; --max-false-refusal not applied"])
    with pytest.raises(SystemExit):
        parser.parse_args(["qs.jsonl", "--max-false-refusal", "-0.1"])


def test_cli_eval_with_fake_pipeline(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")
    made = []

    class FakeQABot(FakeBot):
        def __init__(self, corpus_dir=None):
            super().__init__(text, {x["question"]: ("In 2014 [1].", "back in 2014")
                                    for x in evq.load_questions(tmp_path / "qs.jsonl")})
            self.closed = False
            made.append(self)

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "qa_bot.pipeline", types.SimpleNamespace(QABot=FakeQABot))
    parser = ev.add_eval_arguments(argparse.ArgumentParser())
    qs = str(small_question_file(tmp_path))
    out = tmp_path / "run"
    args = parser.parse_args([qs, "--corpus", str(ROOT / "docs_corpus"), "--out", str(out),
                              "--min-accuracy", "0.3", "--min-abstention", "0.5"])
    assert ev.cli_eval(args) == 1  # refusal recall 0 < 0.5
    printed = capsys.readouterr().out
    assert "FAIL: refusal_recall 0.000 is below --min-abstention 0.500" in printed
    assert "answer_accuracy" not in printed.split("FAIL")[1]  # 1/3 >= 0.3 passes
    assert f"wrote {out}/" in printed and made[0].closed and made[0].warmed
    assert {p.name for p in out.iterdir()} == {"predictions.jsonl", "metrics.json", "report.md"}
    assert ev.cli_eval(parser.parse_args([qs, "--corpus", str(ROOT / "docs_corpus"), "--out", str(out)])) == 0
    # a broken question file fails before any bot is built
    write_jsonl(tmp_path / "bad.jsonl", ["{oops"])
    with pytest.raises(QABotError, match="line 1"):
        ev.cli_eval(parser.parse_args([str(tmp_path / "bad.jsonl")]))
    assert len(made) == 2


@pytest.fixture
def fake_pipeline(monkeypatch):
    """qa_bot.pipeline.QABot replaced by a FakeBot that answers every question "In 2014 [1]." citing
    "back in 2014"; the instances made are listed in the fixture's value."""
    text = (ROOT / "docs_corpus" / ARTICLE).read_text(encoding="utf-8")
    made = []

    class FakeQABot(FakeBot):
        def __init__(self, corpus_dir=None):
            super().__init__(text, {})
            made.append(self)

        def ask(self, question):
            self.replies[question] = ("In 2014 [1].", "back in 2014")
            return super().ask(question)

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "qa_bot.pipeline", types.SimpleNamespace(QABot=FakeQABot))
    return made


@pytest.mark.parametrize("content, message", [
    ("{oops\n", "line 1: invalid JSON"),
    ('{"id": "a", "question": "x?"}\n', "line 1: missing field(s) answers, answerable"),
    ('{"id": "a", "question": "x?", "answers": "6", "answerable": true}\n', "line 1: 'answers' must be"),
    ('{"id": "a", "question": "x?", "answers": ["6"], "answerable": 1}\n', "line 1: 'answerable' must be"),
    ('{"id": "a", "question": "x?", "answers": ["6"], "answerable": true, "source": 5}\n', "line 1: 'source' must"),
    ("\n\n", "holds no questions"),
    (None, "question file not found"),
])
def test_cli_bad_question_file_exits_2(tmp_path, capsys, fake_pipeline, content, message):
    from qa_bot import cli

    path = tmp_path / "qs.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert cli.main(["eval", str(path), "--corpus", str(ROOT / "docs_corpus"), "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("qa-bot: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""  # one line
    assert fake_pipeline == [] and not (tmp_path / "run").exists()  # failed before building a bot


def test_cli_threshold_miss_exits_1_and_pass_exits_0(tmp_path, capsys, fake_pipeline):
    from qa_bot import cli

    qs = str(small_question_file(tmp_path))
    base = ["eval", qs, "--corpus", str(ROOT / "docs_corpus"), "--out", str(tmp_path / "run")]
    assert cli.main(base + ["--min-accuracy", "0.5"]) == 1  # 1/3 answered right
    assert "FAIL: answer_accuracy 0.333 is below --min-accuracy 0.500" in capsys.readouterr().out
    assert cli.main(base + ["--min-accuracy", "0.3"]) == 0
    # every answer is "In 2014 [1].": F1 2/3 on d1, 0 on d2 and d3 -> 0.222; nothing abstained
    assert cli.main(base + ["--min-token-f1", "0.3", "--max-false-refusal", "0"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL: token_f1 0.222 is below --min-token-f1 0.300" in printed and printed.count("FAIL") == 1
    assert cli.main(base + ["--min-token-f1", "0.2", "--max-false-refusal", "0"]) == 0


# ---------------------------------------------------------------- end to end with the real bot


@pytest.mark.slow
def test_run_eval_end_to_end(tmp_path, real_bot):
    """run_eval with the real bot (conftest's shared one: MiniLM, the default reader)."""
    m = ev.run_eval(small_question_file(tmp_path), bot=real_bot, corpus_dir=ROOT / "docs_corpus",
                    out_dir=tmp_path / "run", progress=False)
    out = tmp_path / "run"
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert {"id", "question", "answer", "abstained", "citations", "retrieved", "latency_s", "gold_answers",
                "answerable", "correct", "timings"} <= r.keys()
        assert r["latency_s"] > 0 and r["retrieved"], r["id"]
        assert {"source", "start", "end", "score"} <= r["retrieved"][0].keys()
        for c in r["citations"]:
            text = (ROOT / "docs_corpus" / c["source"]).read_text(encoding="utf-8")
            assert text[c["start"]:c["end"]] == c["text"]
    assert json.loads((out / "metrics.json").read_text()) == m
    assert (m["n_questions"], m["n_answerable"], m["n_unanswerable"], m["evidence_not_found"]) == (4, 3, 1, 0)
    for key in ("recall@1", "recall@3", "recall@5", "mrr", "answer_accuracy", "refusal_recall",
                "false_refusal_rate", "abstention_macro_f1"):
        assert 0.0 <= m[key] <= 1.0, key
    for key in ("citation_precision", "citation_recall"):
        assert m[key] is None or 0.0 <= m[key] <= 1.0, key
    assert m["latency_p50_s"] > 0 and "retrieve" in m["stage_latency"] and "read" in m["stage_latency"]
    from qa_bot.weights import READERS

    model = m["run"]["model"]  # which reader answered, with the hash its weights were verified against
    assert model["model"] == real_bot.settings.reader and model["sha256"] == (READERS[model["model"]].sha256 or None)
    for r in rows:  # answers are short and never carry the reader's unverified draft into the answer text
        assert r["abstained"] or len(evs.answer_core(r["answer"]).split()) <= 10, r["answer"]
    assert "| Answer accuracy |" in (out / "report.md").read_text()

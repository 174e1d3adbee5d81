"""Evaluation: run the bot over a JSONL question file and score retrieval, answers, refusals and citations.

Question file: one JSON object per line with id, question, answers (aliases), answerable, and optionally evidence
(a verbatim span of a corpus file; null or absent when unknown) and source (the corpus file holding the evidence).
See docs/question_format.md. A file that is missing or not in the format raises QuestionFileError (CLI exit code 2).

Metric definitions (figures are in [0, 1] unless said otherwise; None / "n/a" when the denominator is empty):

- Evidence span: the first occurrence of the evidence in the corpus files (sorted by path), or only in the file
  named by the question's `source` when it has one (a `source` that is not a corpus file is a QuestionFileError
  naming the line); exact search first, then after whitespace/quote/case normalisation mapped back to offsets.
- n_with_evidence: answerable questions whose evidence is given (not null or absent). Retrieval and citation
  metrics are computed over these only; n_retrieval_scored of them have their evidence located in the corpus.
- evidence_not_found: of those, the ones whose evidence could not be located in the corpus (neither exactly nor
  after whitespace/quote normalisation). They are excluded from retrieval and citation metrics only.
- recall@k (k = 1, 3, 5): over answerable questions with located evidence, the share whose first k retrieved
  chunks include a relevant one. A chunk (or citation) is relevant when it names the evidence's file (the
  question's `source` when given) and its [start, end) span overlaps the evidence's [start, end) span (adjacent
  spans do not overlap); the same span in another file is not relevant.
- mrr: over the same questions, the mean of 1/rank of the first relevant retrieved chunk (0 when none).
- answer_accuracy: over answerable questions, the share not abstained whose normalised answer contains a
  normalised gold alias on token boundaries (see `normalize_answer`).
- Answer text (for F1, words and quotes; see `answer_core`): the answer with [n] markers removed (a trailing
  citation "In 2014 [1]." gives "In 2014."), white space collapsed, and a pair of quotation marks around the whole
  answer removed. A given answer is one not abstained and without error; n_answered counts them.
- token_f1: over answerable questions, the mean token F1 (SQuAD style) of the answer text against the gold aliases,
  the best alias per question; an abstention or an error scores 0. Tokens are those of `normalize_tokens` on
  both sides (SQuAD's normalisation - lower case, punctuation removed, articles a/an/the removed, white space
  collapsed - plus NFKC, "%" = "percent", thousands commas dropped, number words to digits; unlike SQuAD,
  punctuation separates tokens, "group's" -> "group s", and decimal points inside numbers stay);
  F1 = 2 * overlap / (answer tokens + alias tokens) with the overlap counted as a multiset; an alias
  without tokens ("-A": the article is gone) is compared as written, white-space tokens case-folded (also
  for answer_accuracy). Per question as `f1` in predictions.jsonl.
- token_f1_all: over all questions, the mean of `f1`, where an unanswerable question scores 1 when abstained
  and 0 otherwise (SQuAD 2.0).
- answer_words_median: the median number of words in the answer text of given answers (words: white-space
  separated pieces with a letter or digit); per question as `answer_words`. A count, not a rate.
- verbatim_quote_share: over given answers, the share whose answer text has at least 8 words and, with quotation
  marks and apostrophes removed, white space collapsed, case folded (`_loose`) and punctuation stripped from its
  two ends, occurs as it is in a corpus document (treated the same way): a copied passage, not an answer. Per
  question as `verbatim_quote`.
- refusal_recall: over unanswerable questions, the share abstained.
- false_refusal_rate: over answerable questions, the share abstained.
- abstention_macro_f1: mean of the F1 of the classes "abstain" (gold = unanswerable) and "answer"
  (gold = answerable), each 2TP / (2TP + FP + FN) from the confusion matrix; a class with no gold and no predicted
  members is left out of the mean.
- citation_precision: over answered (not abstained) answerable questions with located evidence, relevant citations
  divided by all their citations (micro-average; answers without citations add nothing to either count).
- citation_recall: over the same answers, the share with at least one relevant citation.
- unsupported_numbers: over non-abstained answers, the number of distinct numbers per answer (digits with optional
  thousands commas and decimal part, after removing [n] markers) that occur in none of the answer's cited passages
  (passage numbers include number words, e.g. "six" supports 6), summed over answers. A count, not a rate.
- latency_p50_s / latency_p95_s: percentiles (linear interpolation) of the wall time around bot.ask per question;
  stage_latency gives the same per key of Answer.timings, over the questions that report that key. Model loading
  is excluded: run_eval calls bot.warm_up() (when the bot has one) first and records its time as warm_up_s.
- run: what was run, on what, when. questions (absolute path) and questions_sha256; corpus (absolute path);
  settings: dataclasses.asdict(bot.settings) with paths as strings (None when the bot has no settings
  dataclass); model: bot.model_info() called after the warm-up (None when the bot has no model_info, {"error": ...}
  when it fails); from both, every entry whose name contains "key" is dropped. started_at / finished_at (local
  time, ISO 8601), wall_s, python, platform, cpu_count, and loadavg_start / loadavg_end (os.getloadavg(): the 1-,
  5- and 15-minute load averages; None where unsupported) so timings can be read beside the machine's load.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from .errors import InvalidQuestion, QABotError, QuestionFileError
from .question import clean_question
from .settings import Settings

REQUIRED_FIELDS = ("id", "question", "answers", "answerable")
OPTIONAL_FIELDS = ("evidence", "source")  # absent = null

# ---------------------------------------------------------------- question file


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a question file (docs/question_format.md); raise QuestionFileError naming the line of
    the first problem. Each question comes back with every field of the format (absent optional ones as None)
    and its line number."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read forever
        raise QuestionFileError(f"question file {path} is not a regular file")
    try:
        raw = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM from Windows editors
    except FileNotFoundError:
        raise QuestionFileError(f"question file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"cannot read question file {path}: {exc}") from None
    questions, seen = [], set()
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: invalid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; arrays nested 100,000 deep
            raise QuestionFileError(f"{where}: unusable JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
        if not isinstance(obj, dict):
            raise QuestionFileError(f"{where}: expected a JSON object")
        missing = [f for f in REQUIRED_FIELDS if f not in obj]
        if missing:
            raise QuestionFileError(f"{where}: missing field(s) {', '.join(missing)}")
        qid, question, answers, answerable = (obj[f] for f in REQUIRED_FIELDS)
        evidence, source = (obj.get(f) for f in OPTIONAL_FIELDS)
        if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
            raise QuestionFileError(f"{where}: 'id' must be a non-empty string")
        if str(qid) in seen:
            raise QuestionFileError(f"{where}: duplicate id {qid!r}")
        if not isinstance(question, str) or not question.strip():
            raise QuestionFileError(f"{where}: 'question' must be a non-empty string")
        try:  # the checks every question passes in QABot.ask, here rather than as an error per question
            clean_question(question, Settings.max_question_chars, "'question'")
        except InvalidQuestion as exc:
            raise QuestionFileError(f"{where}: {exc}") from None
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise QuestionFileError(f"{where}: 'answers' must be a list of strings")
        if not isinstance(answerable, bool):
            raise QuestionFileError(f"{where}: 'answerable' must be true or false")
        if answerable and not any(a.strip() for a in answers):
            raise QuestionFileError(f"{where}: an answerable question needs at least one answer")
        if evidence is not None and (not isinstance(evidence, str) or not evidence.strip()):
            raise QuestionFileError(f"{where}: 'evidence' must be a non-empty string or null")
        if source is not None:
            if not isinstance(source, str) or not source.strip():
                raise QuestionFileError(f"{where}: 'source' must be a non-empty string (a path relative to the "
                                        f"corpus folder) or null")
            source = PurePosixPath(source.strip().replace("\\", "/")).as_posix()  # "./a.txt" -> "a.txt"
        seen.add(str(qid))
        questions.append({"id": str(qid), "question": question, "answers": answers, "answerable": answerable,
                          "evidence": evidence, "source": source, "line": lineno})
    if not questions:
        raise QuestionFileError(f"question file {path} holds no questions")
    return questions


# ---------------------------------------------------------------- evidence location


def read_corpus(corpus_dir: str | Path, max_bytes: int | None = None) -> dict[str, str]:
    """{posix path relative to corpus_dir: text} for every usable document under corpus_dir (its extracted text).

    Reuses the ingest stage's reader so offsets agree with the chunker's (raw UTF-8, no newline translation)."""
    from .ingest import load_corpus
    from .settings import Settings

    docs, _ = load_corpus(Path(corpus_dir), max_bytes or Settings.from_env().max_file_bytes)
    return {d.source: d.text for d in docs}


_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
                         "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
                         "–": "-", "—": "-", "‐": "-", "‑": "-"})


def _loose(text: str) -> tuple[str, list[int]]:
    """Lower-cased, quote-straightened, whitespace-collapsed text and, per character, its offset in `text`."""
    out, offsets, prev_space = [], [], False
    for i, ch in enumerate(text):
        if ch.isspace():
            if not prev_space:
                out.append(" ")
                offsets.append(i)
            prev_space = True
            continue
        prev_space = False
        low = ch.translate(_QUOTES).lower()
        out.append(low if len(low) == 1 else ch)  # keep 1:1 offsets (e.g. "İ".lower() is 2 chars)
        offsets.append(i)
    return "".join(out), offsets


def check_sources(questions: list[dict[str, Any]], corpus: dict[str, str], questions_path: str | Path,
                  corpus_dir: str | Path) -> None:
    """Raise QuestionFileError naming the line of the first question whose `source` is not a corpus file."""
    for q in questions:
        if q.get("source") is not None and q["source"] not in corpus:
            raise QuestionFileError(f"{questions_path}, line {q['line']}: source {q['source']!r} is not a usable "
                                    f"document of the corpus folder {corpus_dir}")


def locate_evidence(evidence: str | None, corpus: dict[str, str],
                    source: str | None = None) -> tuple[str, int, int] | None:
    """(source, start, end) of the first occurrence of `evidence`, files in sorted order, or only in the file
    `source` when one is given; exact search first, then a whitespace/quote/case-insensitive one mapped back to
    original offsets (also of the evidence with a Markdown or reStructuredText file's markup removed); None
    when not found (or `source` is not in the corpus)."""
    if not evidence:
        return None
    if source is not None:
        corpus = {source: corpus[source]} if source in corpus else {}
    for source, text in corpus.items():
        i = text.find(evidence)
        if i >= 0:
            return source, i, i + len(evidence)
    from .formats import markup_text

    plain = _loose(evidence)[0].strip()
    # Evidence copied from a Markdown or reStructuredText file holds its markup ("``pyparsing``", a heading's
    # underline, "[CVE-…](url)"); the document is its readable text, so the evidence is made readable alike
    # (once per kind of file, not per file).
    readable: dict[str, str] = {}
    for source, text in corpus.items():
        kind = Path(source).suffix.lower()
        if kind not in readable:
            marked = markup_text(source, evidence)
            readable[kind] = _loose(marked[0])[0].strip() if marked else plain
        hay, offsets = _loose(text)
        for needle in dict.fromkeys((plain, readable[kind])):
            i = hay.find(needle) if needle else -1
            if i >= 0:
                return source, offsets[i], offsets[i + len(needle) - 1] + 1
    return None


# ---------------------------------------------------------------- answer normalisation

_MARKER = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")
_TOKEN = re.compile(r"\d+(?:\.\d+)+|\w+")  # decimals stay whole ("2.7"); other punctuation splits
_ARTICLES = {"a", "an", "the"}
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_ORDINALS = {w: i for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth".split(), 1)}
_ORDINALS.update({w: 10 * i for i, w in enumerate(
    "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth".split(), 2)})


def strip_markers(text: str) -> str:
    return _MARKER.sub(" ", text)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _kind(value: int) -> str:
    return "unit" if 1 <= value <= 9 else "teen" if value <= 19 else "tens"


def _words_to_digits(tokens: list[str]) -> list[str]:
    """Replace runs of English number words by digits: "twenty one" -> "21", "third" -> "3rd",
    "six hundred" -> "600", "two thousand and" -> "2000 and". Runs follow ordinary grammar, so "one two" stays
    two numbers; "hundred"/"thousand" need a number before them."""
    out, i = [], 0
    while i < len(tokens):
        total = cur = 0
        last, j, ordinal = None, i, False
        while j < len(tokens) and not ordinal:
            t = tokens[j]
            value = _UNITS.get(t, _TENS.get(t, _ORDINALS.get(t)))
            if value is not None:
                kind = "zero" if value == 0 else _kind(value)
                ok = {"unit": last in (None, "tens", "hundred", "thousand"),
                      "teen": last in (None, "hundred", "thousand"),
                      "tens": last in (None, "hundred", "thousand"),
                      "zero": last is None}[kind]
                if not ok:
                    break
                cur += value
                ordinal = t in _ORDINALS
                last = kind
                if kind == "zero":
                    j += 1
                    break
            elif t == "hundred" and last in ("unit", "teen") and cur < 100:
                cur, last = cur * 100, "hundred"
            elif t == "thousand" and last in ("unit", "teen", "tens", "hundred") and total == 0:
                total, cur, last = cur * 1000, 0, "thousand"
            else:
                break
            j += 1
        if j == i:
            out.append(tokens[i])
            i += 1
        else:
            n = total + cur
            out.append(_ordinal(n) if ordinal else str(n))
            i = j
    return out


def normalize_tokens(text: str) -> list[str]:
    """Tokens of `text` after: [n] markers removed, NFKC, lower case, curly quotes straightened, "%" -> "percent",
    thousands commas dropped, punctuation removed (decimal points inside numbers kept), articles dropped,
    number words turned into digits ("six" -> "6", "twenty one" -> "21", "third" -> "3rd")."""
    text = unicodedata.normalize("NFKC", strip_markers(text)).lower().translate(_QUOTES)
    text = text.replace("%", " percent ")
    text = re.sub(r"\bper cent\b", "percent", text)
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,000 -> 1000
    tokens = [t for t in _TOKEN.findall(text.replace("_", " ")) if t not in _ARTICLES]
    return _words_to_digits(tokens)


def normalize_answer(text: str) -> str:
    return " ".join(normalize_tokens(text))


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def _literal_tokens(text: str) -> list[str]:
    """White-space tokens, lower case, without markers and surrounding punctuation but keeping a leading
    hyphen: "-A [1]." -> ["-a"]."""
    return [t for t in (w.strip(",.;:!?\"'()[]“”‘’") for w in strip_markers(text).lower().split()) if t]


def _gold_tokens(alias: str) -> tuple[list[str], bool]:
    """An alias's tokens, and whether they are literal: an alias that is nothing once normalised is an option
    or a letter ("-A"), not an article, so it and the answer are compared as written (_literal_tokens)."""
    tokens = normalize_tokens(alias)
    if tokens:
        return tokens, False
    literal = _literal_tokens(alias)
    return ([] if set(literal) <= _ARTICLES else literal), True  # "The" alone is still no answer


def _answer_tokens(answer: str, literal: bool) -> list[str]:
    return _literal_tokens(answer) if literal else normalize_tokens(answer)


def answer_matches(answer: str, aliases: Iterable[str]) -> bool:
    """True when the normalised answer contains some normalised alias as a whole-token sequence (an alias
    that normalises to nothing, as written: _gold_tokens)."""
    hay = {literal: _answer_tokens(answer, literal) for literal in (False, True)}  # the answer tokenised once
    return any(_contains(hay[literal], gold) for gold, literal in map(_gold_tokens, aliases))


# ---------------------------------------------------------------- token F1, answer length, verbatim quotes

_WORD = re.compile(r"\S*\w\S*")  # a word: white-space separated, with at least one letter or digit
_SURROUNDING_QUOTES = re.compile(r'^["\'“‘«„‚]\s*(.*?)\s*["\'”’»“‘]([.,;:!?]?)$', re.S)
VERBATIM_MIN_WORDS = 8


def answer_core(text: str) -> str:
    """The answer as a user reads it: [n] markers removed (with the space they leave before punctuation, so a
    trailing citation "In 2014 [1]." gives "In 2014."), white space collapsed, and a pair of quotation marks around
    the whole answer removed ('“It split in six.” [1]' -> "It split in six.")."""
    text = " ".join(strip_markers(text).split())
    text = re.sub(r"\s+(?=[.,;:!?](?:\s|$))", "", text)
    m = _SURROUNDING_QUOTES.match(text)
    return m.group(1) + m.group(2) if m else text


def count_words(text: str) -> int:
    """Words of answer_core(text): white-space separated pieces holding a letter or digit."""
    return len(_WORD.findall(answer_core(text)))


def token_f1(answer: str, aliases: Iterable[str]) -> float:
    """SQuAD-style token F1 of answer_core(answer) against each alias, the best one. Tokens as in
    normalize_tokens (both sides); F1 = 2 * overlap / (answer tokens + alias tokens), overlap counted as a
    multiset. An alias that normalises to nothing is compared as written (_gold_tokens); an answer with no
    token scores 0."""
    core = answer_core(answer)
    preds = {literal: Counter(_answer_tokens(core, literal)) for literal in (False, True)}  # tokenised once
    best = 0.0
    for alias in aliases:
        tokens, literal = _gold_tokens(alias)
        gold, pred = Counter(tokens), preds[literal]
        common = sum((pred & gold).values())
        if common:
            best = max(best, 2 * common / (sum(pred.values()) + sum(gold.values())))
    return best


def _quote_free(text: str) -> str:
    """_loose text with quotation marks and apostrophes deleted and white space collapsed again."""
    return " ".join(re.sub("[\"']", "", _loose(text)[0]).split())


def quote_haystacks(corpus: dict[str, str]) -> list[str]:
    """The corpus documents prepared once for is_verbatim_quote."""
    return [_quote_free(text) for text in corpus.values()]


def is_verbatim_quote(answer: str, haystacks: Iterable[str]) -> bool:
    """True when answer_core(answer) has at least VERBATIM_MIN_WORDS words and, with quotation marks and
    apostrophes removed, white space collapsed, case folded and punctuation stripped from its two ends, occurs
    in a corpus document (prepared the same way by quote_haystacks): the answer is a copied passage."""
    core = answer_core(answer)
    if len(_WORD.findall(core)) < VERBATIM_MIN_WORDS:
        return False
    needle = _quote_free(core).strip(" .,;:!?")
    return bool(needle) and any(needle in hay for hay in haystacks)


# ---------------------------------------------------------------- numbers and spans

_NUMBER = re.compile(r"(?<![\d.])\d+(?:,\d{3})*(?:\.\d+)?")


def extract_numbers(text: str) -> list[str]:
    """Numbers written in digits, normalised: commas dropped ("1,000" -> "1000"), "$2.7" -> "2.7"."""
    return [m.group().replace(",", "") for m in _NUMBER.finditer(strip_markers(text))]


def unsupported_numbers(answer: str, cited_texts: Iterable[str]) -> list[str]:
    """Distinct numbers of the answer that appear in none of the cited passages (digits or number words)."""
    supported = set()
    for t in cited_texts:
        supported.update(extract_numbers(t))
        supported.update(extract_numbers(normalize_answer(t)))  # "six companies" supports 6
    return [n for n in dict.fromkeys(extract_numbers(answer)) if n not in supported]


def overlaps(a: dict[str, Any], b: dict[str, Any] | None) -> bool:
    """Same source and overlapping half-open [start, end) spans."""
    return b is not None and a["source"] == b["source"] and a["start"] < b["end"] and b["start"] < a["end"]


# ---------------------------------------------------------------- per-question records (pure)


def make_record(q: dict[str, Any], answer: Any, latency_s: float, evidence_span: tuple[str, int, int] | None,
                error: str | None = None, haystacks: Iterable[str] = ()) -> dict[str, Any]:
    """One predictions.jsonl row from a question, its Answer (None on error) and the located evidence;
    `haystacks` (quote_haystacks of the corpus) for the verbatim-quote check.

    `correct`: answerable -> answered and matches an alias; unanswerable -> abstained.
    `f1`: answerable -> token_f1 of the answer (0 when abstained or on error); unanswerable -> 1 when abstained,
    else 0 (SQuAD 2.0). `answer_words` / `verbatim_quote`: for a given answer (not abstained, no error), else
    None / False."""
    ev = dict(zip(("source", "start", "end"), evidence_span)) if evidence_span else None
    text = answer.text if answer is not None else ""
    abstained = bool(answer.abstained) if answer is not None else False  # an error is not a refusal
    cites = [{"n": c.n, "source": c.source, "start": c.start, "end": c.end, "text": c.text}
             for c in (answer.citations if answer is not None else ())]
    hits = [{"source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end, "score": round(float(h.score), 4)}
            for h in (answer.retrieved if answer is not None else ())]
    given = answer is not None and not abstained
    if q["answerable"]:
        correct = not abstained and answer_matches(text, q["answers"])
        f1 = token_f1(text, q["answers"]) if given else 0.0
    else:
        correct = abstained
        f1 = 1.0 if abstained else 0.0
    rank = next((i for i, h in enumerate(hits, 1) if overlaps(h, ev)), None)
    read = [{"source": x.source, "start": x.start, "end": x.end}
            for x in (getattr(answer, "evidence", ()) or ()) if hasattr(x, "source")] if answer is not None else []
    return {
        "id": q["id"], "question": q["question"], "answer": text, "abstained": abstained,
        "citations": cites, "retrieved": hits, "latency_s": round(latency_s, 4),
        "gold_answers": q["answers"], "answerable": q["answerable"], "correct": correct, "f1": f1,
        "answer_words": count_words(text) if given else None,
        "verbatim_quote": given and is_verbatim_quote(text, haystacks),
        "timings": {k: round(float(v), 4) for k, v in (answer.timings if answer is not None else {}).items()},
        "evidence": q.get("evidence"), "source": q.get("source"), "evidence_span": ev,
        "first_relevant_rank": rank,
        # whether the reader was shown the evidence (None without located evidence, or without a record of it)
        "evidence_shown": any(overlaps(x, ev) for x in read) if ev is not None and read else None,
        "relevant_citations": [c["n"] for c in cites if overlaps(c, ev)],
        "unsupported_numbers": [] if abstained else unsupported_numbers(text, [c["text"] for c in cites]),
        "draft": getattr(answer, "draft", "") if answer is not None else "",
        "reason": getattr(answer, "reason", "") if answer is not None else "",
        "error": error,
    }


# ---------------------------------------------------------------- metrics (pure)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p95_s": None}
    import numpy as np

    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return {"p50_s": round(float(p50), 4), "p95_s": round(float(p95), 4)}


def _f1(tp: int, fp: int, fn: int) -> float | None:
    den = 2 * tp + fp + fn
    return 2 * tp / den if den else None  # None: class absent from gold and predictions -> excluded


def compute_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """All figures from predictions rows (see the module docstring for definitions)."""
    ans = [r for r in records if r["answerable"]]
    unans = [r for r in records if not r["answerable"]]
    with_evidence = [r for r in ans if r["evidence"] is not None]
    located = [r for r in with_evidence if r["evidence_span"] is not None]
    ranks = [r["first_relevant_rank"] for r in located]

    tp = sum(r["abstained"] for r in unans)  # class "abstain"
    fn = len(unans) - tp
    fp = sum(r["abstained"] for r in ans)
    tn = len(ans) - fp
    f1s = [f for f in (_f1(tp, fp, fn), _f1(tn, fn, fp)) if f is not None]

    cited = [r for r in located if not r["abstained"]]
    n_cites = sum(len(r["citations"]) for r in cited)
    n_relevant = sum(len(r["relevant_citations"]) for r in cited)

    given = [r for r in records if not r["abstained"] and r["error"] is None]

    stages = sorted({k for r in records for k in r["timings"]})
    return {
        "n_questions": len(records), "n_answerable": len(ans), "n_unanswerable": len(unans),
        "n_with_evidence": len(with_evidence), "evidence_not_found": len(with_evidence) - len(located),
        "n_errors": sum(r["error"] is not None for r in records),
        "n_retrieval_scored": len(located),
        **{f"recall@{k}": _ratio(sum(rk is not None and rk <= k for rk in ranks), len(ranks)) for k in (1, 3, 5)},
        "mrr": _ratio(sum(1 / rk for rk in ranks if rk), len(ranks)),
        "answer_accuracy": _ratio(sum(r["correct"] for r in ans), len(ans)),
        "token_f1": _ratio(sum(r["f1"] for r in ans), len(ans)),
        "token_f1_all": _ratio(sum(r["f1"] for r in records), len(records)),
        "n_answered": len(given),
        "answer_words_median": float(statistics.median(r["answer_words"] for r in given)) if given else None,
        "verbatim_quote_share": _ratio(sum(r["verbatim_quote"] for r in given), len(given)),
        "refusal_recall": _ratio(tp, len(unans)),
        "false_refusal_rate": _ratio(fp, len(ans)),
        "abstention_macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "abstention_confusion": {"abstain_on_unanswerable": tp, "answer_on_unanswerable": fn,
                                 "abstain_on_answerable": fp, "answer_on_answerable": tn},
        "n_citation_scored_answers": len(cited), "n_citations": n_cites,
        "citation_precision": _ratio(n_relevant, n_cites),
        "citation_recall": _ratio(sum(bool(r["relevant_citations"]) for r in cited), len(cited)),
        "unsupported_numbers": sum(len(r["unsupported_numbers"]) for r in records if not r["abstained"]),
        **{f"latency_{k}": v for k, v in _percentiles([r["latency_s"] for r in records]).items()},
        "stage_latency": {s: _percentiles([r["timings"][s] for r in records if s in r["timings"]]) for s in stages},
    }


# ---------------------------------------------------------------- report


HEADLINE = [  # (metrics key, label, format of a float)
    ("answer_accuracy", "Answer accuracy", ".3f"),
    ("token_f1", "Token F1 (answerable)", ".3f"),
    ("token_f1_all", "Token F1 (all, SQuAD 2.0)", ".3f"),
    ("answer_words_median", "Answer length (median words)", "g"),  # 12.0 -> "12", 12.5 -> "12.5"
    ("verbatim_quote_share", "Verbatim-quote answers (share)", ".3f"),
    ("recall@1", "Retrieval recall@1", ".3f"),
    ("recall@3", "Retrieval recall@3", ".3f"),
    ("recall@5", "Retrieval recall@5", ".3f"),
    ("mrr", "Retrieval MRR", ".3f"),
    ("refusal_recall", "Refusal recall (unanswerable)", ".3f"),
    ("false_refusal_rate", "False-refusal rate (answerable)", ".3f"),
    ("abstention_macro_f1", "Abstention macro-F1", ".3f"),
    ("citation_precision", "Citation precision", ".3f"),
    ("citation_recall", "Citation recall", ".3f"),
    ("unsupported_numbers", "Unsupported numbers (count)", ".3f"),
    ("latency_p50_s", "Latency p50 (s)", ".3f"),
    ("latency_p95_s", "Latency p95 (s)", ".3f"),
]


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "n/a"
    return format(v, spec) if isinstance(v, float) else str(v)


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def _evidence_note(m: dict[str, Any]) -> str:
    return (f"evidence given for {m['n_with_evidence']} answerable, not found in the corpus for "
            f"{m['evidence_not_found']}, so retrieval and citations scored over {m['n_retrieval_scored']}")


def _run_note(run: dict[str, Any]) -> str:
    model = run.get("model")
    model = ", ".join(f"{k} {v}" for k, v in model.items()) if isinstance(model, dict) else "not reported"
    load = " → ".join(str(x[0]) if x else "n/a" for x in (run.get("loadavg_start"), run.get("loadavg_end")))
    return (f"Run {run.get('started_at')} ({run.get('wall_s')} s), Python {run.get('python')}, "
            f"{run.get('cpu_count')} CPUs, 1-minute load {load}. Model: {model}. Settings and paths: metrics.json.")


def render_report(records: list[dict[str, Any]], metrics: dict[str, Any], title: str = "Evaluation") -> str:
    m = metrics
    lines = [f"# {title}", "",
             f"{m['n_questions']} questions: {m['n_answerable']} answerable, {m['n_unanswerable']} unanswerable; "
             f"{_evidence_note(m)}; errors: {m['n_errors']}.", ""]
    if m.get("run"):
        lines += [_run_note(m["run"]), ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {label} | {_fmt(m[key], spec)} |" for key, label, spec in HEADLINE]
    for stage, p in m["stage_latency"].items():
        lines.append(f"| Stage {stage} p50 / p95 (s) | {_fmt(p['p50_s'])} / {_fmt(p['p95_s'])} |")
    if fb := m.get("user_feedback"):  # the chat users' votes, all time (not this run's questions)
        value = fb["error"] if "error" in fb else (f"{fb['up']} up / {fb['down']} down of {fb['n']}"
                                                   f" ({fb['with_comment']} with a comment)")
        lines.append(f"| Chat feedback (all time) | {value} |")

    def section(name: str, rows: list[dict[str, Any]]) -> None:
        lines.extend(["", f"## {name} ({len(rows)})", ""])
        if not rows:
            lines.append("None.")
        for r in rows:
            lines.append(f"### {r['id']}: {_one_line(r['question'])}")
            lines.append("")
            lines.append(f"- Answer: {_one_line(r['answer']) or '(empty)'}"
                         + (f" (error: {_one_line(r['error'])})" if r["error"] else ""))
            lines.append(f"- Gold: {', '.join(r['gold_answers']) or '(unanswerable)'}")
            if r["answerable"]:
                lines.append(f"- Token F1: {r['f1']:.3f}")
            if r["evidence"]:
                where = (f"{r['evidence_span']['source']} [{r['evidence_span']['start']}:{r['evidence_span']['end']}]"
                         if r["evidence_span"] else "not found in corpus")
                lines.append(f"- Evidence ({where}): {_one_line(r['evidence'])}")
            if r["unsupported_numbers"]:
                lines.append(f"- Unsupported numbers: {', '.join(r['unsupported_numbers'])}")
            lines.append("- Cited passages:" if r["citations"] else "- Cited passages: none")
            for c in r["citations"]:
                mark = " (overlaps evidence)" if c["n"] in r["relevant_citations"] else ""
                lines.append(f"  - [{c['n']}] {c['source']} [{c['start']}:{c['end']}]{mark}: {_one_line(c['text'])}")
            lines.append("")

    section("Wrong answers", [r for r in records if r["answerable"] and not r["abstained"] and not r["correct"]])
    section("False refusals", [r for r in records if r["answerable"] and r["abstained"]])
    section("Missed refusals", [r for r in records if not r["answerable"] and not r["abstained"]])
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- running


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy: paths as strings, tuples and sets as lists, other objects as str; entries of a mapping
    whose name contains "key" (any case) are dropped, so no API key or key variable reaches metrics.json."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if "key" not in str(k).lower()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # PurePath and anything else


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on Windows
        return None


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def describe_bot(bot: Any) -> dict[str, Any]:
    """{"settings": dataclasses.asdict(bot.settings) or None, "model": bot.model_info() or None}, JSON-ready
    (see _jsonable: nothing whose name contains "key"). A model_info() that fails is recorded as {"error": ...}."""
    settings = getattr(bot, "settings", None)
    is_instance = dataclasses.is_dataclass(settings) and not isinstance(settings, type)
    model = None
    if callable(getattr(bot, "model_info", None)):
        try:
            model = bot.model_info()
        except Exception as exc:  # metadata: must not lose the run
            model = {"error": f"{type(exc).__name__}: {exc}"}
    return {"settings": _jsonable(dataclasses.asdict(settings)) if is_instance else None, "model": _jsonable(model)}


def feedback_summary(bot: Any) -> dict[str, Any] | None:
    """The chat's thumbs up/down counts (qa_bot.feedback) from the bot's Settings.feedback_db, beside the eval's
    own figures; None when the bot has no settings, {"error": ...} when the database cannot be read."""
    from .feedback import FeedbackError, FeedbackStore

    path = getattr(getattr(bot, "settings", None), "feedback_db", None)
    if path is None:
        return None
    try:
        return {**FeedbackStore(path).summary(), "db": str(path)}
    except FeedbackError as exc:
        return {"error": str(exc), "db": str(path)}


def done_records(path: Path, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a stopped run's predictions.jsonl that answer questions of this file (same id, same question),
    in the file's order; a line cut off when the run was stopped, or any other unreadable line, is left out."""
    asked = {q["id"]: q["question"] for q in questions}
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"cannot resume from {path}: {exc}") from None
    seen = set()
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict) and asked.get(row.get("id")) == row.get("question") and row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    return rows


def run_eval(questions_path: str | Path, *, bot: Any, corpus_dir: str | Path, out_dir: str | Path,
             progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Warm the bot up (untimed), ask it every question, write predictions.jsonl, metrics.json and report.md into out_dir; return metrics.

    Each prediction is appended to predictions.jsonl (flushed to disk) as soon as it is made, so a run stopped
    after 22 of 36 questions keeps those 22. resume: continue such a run in out_dir; the questions whose id is
    already there (with the same question) are not asked again, and the metrics cover all of them.

    A QABotError from bot.ask (e.g. an invalid question) is recorded on that row and scored as a wrong,
    non-abstained answer; any other exception propagates. metrics["run"] records what was run, on what and
    when (see the module docstring)."""
    from tqdm import tqdm

    started_at, load_start, t_start = _now(), _loadavg(), time.perf_counter()
    questions = load_questions(questions_path)
    corpus = read_corpus(corpus_dir)  # raises CorpusError when the folder is missing or unusable
    check_sources(questions, corpus, questions_path, corpus_dir)  # before any model is loaded
    haystacks = quote_haystacks(corpus)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Load models before the clock starts, so latency figures are per question, not the first load.
    t0 = time.perf_counter()
    if callable(getattr(bot, "warm_up", None)):
        bot.warm_up()
    warm_up_s = time.perf_counter() - t0
    bot_info = describe_bot(bot)  # after the warm-up: the model is loaded

    predictions = out / "predictions.jsonl"
    records = done_records(predictions, questions) if resume else []
    done = {r["id"] for r in records}
    # The rows kept are written back first: a line cut off by the stop is dropped, the rest follow it.
    with open(predictions, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        todo = [q for q in questions if q["id"] not in done]
        bar = tqdm(todo, desc="eval", unit="q", file=sys.stderr, disable=not progress, dynamic_ncols=True,
                   initial=len(records), total=len(questions))
        for q in bar:
            span = locate_evidence(q["evidence"], corpus, q["source"]) if q["answerable"] else None
            answer, error = None, None
            t0 = time.perf_counter()
            try:
                answer = bot.ask(q["question"])
            except QABotError as exc:
                error = str(exc) or type(exc).__name__
            latency_s = time.perf_counter() - t0
            records.append(make_record(q, answer, latency_s, span, error, haystacks))
            f.write(json.dumps(records[-1], ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())  # a run killed at the next question keeps this one
            bar.set_postfix(correct=f"{sum(r['correct'] for r in records)}/{len(records)}")
    order = {q["id"]: i for i, q in enumerate(questions)}
    records.sort(key=lambda r: order[r["id"]])

    run = {
        "questions": str(Path(questions_path).resolve()),
        "questions_sha256": hashlib.sha256(Path(questions_path).read_bytes()).hexdigest(),
        "corpus": str(Path(corpus_dir).resolve()),
        **bot_info,
        "started_at": started_at, "finished_at": _now(), "wall_s": round(time.perf_counter() - t_start, 3),
        "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "loadavg_start": load_start, "loadavg_end": _loadavg(), "resumed_with": len(done),
    }
    metrics = {**compute_metrics(records), "warm_up_s": round(warm_up_s, 4), "run": run,
               "user_feedback": feedback_summary(bot)}
    if done:  # in the questions' order, as a run that was never stopped writes them
        with open(predictions, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_report(records, metrics, f"Evaluation of {Path(questions_path).name}"),
                                   encoding="utf-8")
    return metrics


# ---------------------------------------------------------------- CLI


def _unit_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{s} is outside [0, 1]")
    return v


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("questions", help="JSONL question file: id, question, answers, answerable[, evidence, source] (docs/question_format.md)")
    parser.add_argument("--corpus", default=None, help="corpus folder (default: the configured docs_corpus/)")
    parser.add_argument("--out", default=None, help="output folder (default: eval/runs/<YYYYmmdd-HHMMSS>/)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped run in --out: questions already in its predictions.jsonl (each "
                             "written as it is answered) are not asked again")
    parser.add_argument("--min-accuracy", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when answer accuracy is below X")
    parser.add_argument("--min-token-f1", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when token F1 over answerable questions is below X")
    parser.add_argument("--max-false-refusal", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when the false-refusal rate on answerable questions is above X")
    parser.add_argument("--min-abstention", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when refusal recall on unanswerable questions is below X")
    parser.add_argument("--min-citation-precision", type=_unit_float, default=None, metavar="X",
                        help="exit 1 when citation precision is below X")
    return parser


THRESHOLDS = [  # (argument, metrics key); a min_ argument fails below its value, a max_ one above
    ("min_accuracy", "answer_accuracy"), ("min_token_f1", "token_f1"), ("min_abstention", "refusal_recall"),
    ("max_false_refusal", "false_refusal_rate"), ("min_citation_precision", "citation_precision")]


def check_thresholds(metrics: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(failures, notes). A figure that is n/a (empty denominator) is not checked and is noted instead."""
    failures, notes = [], []
    for attr, key in THRESHOLDS:
        limit = getattr(args, attr, None)
        if limit is None:
            continue
        value, option = metrics[key], "--" + attr.replace("_", "-")
        if value is None:
            notes.append(f"{key} is n/a for this question set; {option} not applied")
        elif attr.startswith("min_") and value < limit:
            failures.append(f"{key} {value:.3f} is below {option} {limit:.3f}")
        elif attr.startswith("max_") and value > limit:
            failures.append(f"{key} {value:.3f} is above {option} {limit:.3f}")
    return failures, notes


def headline(metrics: dict[str, Any]) -> str:
    m = metrics
    lines = [f"{m['n_questions']} questions ({m['n_answerable']} answerable, {m['n_unanswerable']} unanswerable; "
             f"{_evidence_note(m)}; errors: {m['n_errors']})"]
    lines += [f"  {label:<34} {_fmt(m[key], spec)}" for key, label, spec in HEADLINE]
    return "\n".join(lines)


def cli_eval(args: argparse.Namespace) -> int:
    from .pipeline import QABot
    from .settings import Settings

    load_questions(args.questions)  # fail fast on a bad file, before loading any model
    resume = getattr(args, "resume", False)
    if resume and not args.out:
        raise QuestionFileError("--resume continues the run in --out DIR: name the folder of the stopped run")
    out = Path(args.out) if args.out else Path("eval") / "runs" / time.strftime("%Y%m%d-%H%M%S")
    bot = QABot(corpus_dir=args.corpus)
    try:
        settings = getattr(bot, "settings", None)  # the bot's own corpus, so evidence offsets match its chunks
        corpus_dir = settings.corpus_dir if settings else Path(args.corpus or Settings.from_env().corpus_dir)
        metrics = run_eval(args.questions, bot=bot, corpus_dir=corpus_dir, out_dir=out, resume=resume)
    finally:
        bot.close()
    print(headline(metrics))
    print(f"wrote {out}/ (predictions.jsonl, metrics.json, report.md)")
    failures, notes = check_thresholds(metrics, args)
    for n in notes:
        print(f"note: {n}")
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0

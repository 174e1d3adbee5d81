"""Eval scoring: answer normalisation, token F1, verbatim quotes, numbers, citation relevance; per-question records
and the figures of metrics.json computed from them (pure functions: nothing here reads files or asks the bot).

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
  marks and apostrophes removed, white space collapsed, case folded (`loose_text`) and punctuation stripped from its
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
- run: written by run_eval (qa_bot.eval_report.run_info says what it holds).
"""
from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from typing import Any, Iterable

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
                         "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
                         "–": "-", "—": "-", "‐": "-", "‑": "-"})


def loose_text(text: str) -> tuple[str, list[int]]:
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
    """loose_text with quotation marks and apostrophes deleted and white space collapsed again."""
    return " ".join(re.sub("[\"']", "", loose_text(text)[0]).split())


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

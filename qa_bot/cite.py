"""Sentences, words, numbers and names: the pure lexical toolkit that chunking, the retriever and the
grounding rules share (the one sentence splitter, normalising, stemming, stop words, number
canonicalisation, proper names, IDF and key-term coverage, and the kind of answer a question asks for)."""
from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Sequence

MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_WORD = WORD = re.compile(r"[A-Za-z0-9][\w'’\-]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A name runs on through any letter: "Kitzbühel" is one name, not "Kitzb".
_CAP = re.compile(r"\b[A-Z][^\W_]*(?:['’][a-z]+)?")
# A sentence ends at . ! ? (and a closing quote or bracket, kept in the sentence) before white space and
# an opening capital, digit or quote; at a blank line; or before a line that opens a list item with a
# bullet ("  * Fixed ...", " - Added ..."), so each item of a changelog's list is a sentence of its own,
# even when items lack a full stop. Abbreviations like "U.S. and" do not split because the next word is
# lower case. Numbered items are left out: "under version\n2. or any later" wraps a sentence as often as
# a "2. " line lists.
_SENTENCE_END = re.compile(
    r"""(?:(?<=[.!?])|(?<=[.!?]["'”’)\]]))\s+(?=["'“‘(\[]?[A-Z0-9])|\n\s*\n|\n(?=[ \t]*[*\-+•][ \t])""")
# ...but not after a name's initial followed by one space ("Philip A. Nelson", "P. J. Plauger"): a capital
# letter alone after white space or "(". A variable or option ending a sentence ("when creating B.  Also",
# "-R.  Windows", "%Q. This") is not an initial: it follows no space, or two spaces come after it.
_INITIAL = re.compile(r"(?:^|[\s(])[A-Z]\.$")

# A line this short can be a title or a section heading (document titles in ingest, headings in retrieve).
TITLE_MAX_CHARS, TITLE_MAX_WORDS = 90, 12

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "twice": 2, "half": 0.5,
}
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves according said says say roughly many much what's whose
    did does do get got make made making one ones
    go goes going went gone take takes took taken come comes came become becomes became give gave given
    put puts set sets keep kept""".split()  # light verbs: irregular forms would defeat the stemmer anyway
)
# Words of the question's form, not its topic.
QUESTION_FORM = frozenset("""how many much what which who whom whose when where why kind name named
    year years time frame share percent percentage ranked rank describe described called call""".split())
REFUSAL_PATTERNS = re.compile(
    r"(does not|doesn't|do not|did not|not) (say|mention|provide|specify|state|contain|include|tell)"
    r"|no (information|mention|data|answer)|not (mentioned|stated|specified|provided|given|available|known)"
    r"|cannot (be )?(answer|determin|find|know)|can't (answer|determin|find|tell)|i don'?t know|unknown|unclear",
    re.IGNORECASE,
)


# A piece that is only references ("[T6027, CVE-2022-34903]", "[#61303, #60823]", "CVE-2023-24056", "(#1234)",
# an issue number left by a reStructuredText role: "completion. 2581") belongs to the sentence before it, on
# the same line or the next: alone it is no sentence, and without it the sentence loses the CVE a question asks for.
_REF = r"(?:CVE-\d{4}-\d+|[A-Z]{1,4}-?\d+|#\d+|\d{3,})"
_REFERENCES = re.compile(rf"[\[(]?{_REF}(?:\s*[,;]\s*{_REF})*[\])]?\.?")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Spans of sentences, leading/trailing white space excluded: text[start:end] is the sentence, so
    offsets add up to exact citations. The only sentence splitter: chunks, the reader's sentences and
    answers are all cut by it. A piece of references alone is joined to the sentence before it."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.group() == " " and _INITIAL.search(text[max(0, m.start() - 3):m.start()]):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            if out and _REFERENCES.fullmatch(text[s:e]) and not _BLANK_LINE.search(text[out[-1][1]:s]):
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
    return out


def previous_sentence_start(doc: str, start: int) -> int:
    """Start of the sentence before the one at `start` (start itself when there is none)."""
    lo = max(0, start - 1200)  # look back this far at most: a longer sentence before starts here
    spans = [(lo + s, lo + e) for s, e in sentence_spans(doc[lo:start])]
    return spans[-1][0] if spans and spans[-1][0] < start else start


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


def sentence_case(answer: str) -> str:
    """The answer with a capital first letter when it is a phrase that opens with a plain word ("in Hong
    Kong" -> "In Hong Kong"). A single word stays as the document wrote it, like any lower-case name: it is as
    likely a command or a package ("zstd", "libc-bin", "sbc.y", "bug-ed@gnu.org") as a common word."""
    words = answer.split()
    if len(words) > 1 and re.fullmatch(r"[a-z]+[,;:]?", words[0]):
        return answer[:1].upper() + answer[1:]
    return answer


def strip_markers(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", text)).strip()


def markers(text: str) -> list[int]:
    """Passage numbers cited in text, in order of first appearance, without repeats."""
    out: list[int] = []
    for m in MARKER.finditer(text):
        for n in re.split(r"\s*,\s*", m.group(1)):
            if int(n) not in out:
                out.append(int(n))
    return out


# British spellings as American ones, so "licence" finds "license" and "organisation" "organization": questions
# are written either way, and the texts too. Applied to both sides of every comparison, so a word these rules
# bend that has no other spelling ("promise" -> "promize") still matches itself. The stems' least lengths keep
# short words ("four", "hour", "raise", "vogue") as they are.
_SPELLINGS = tuple((re.compile(p), r) for p, r in (
    (r"^(lic|def|off|pret)ence(s|d)?$", r"\1ense\2"),
    (r"^(\w{4,})is(e|ed|es|er|ers|ing|ation|ations)$", r"\1iz\2"),
    (r"^(\w{3,})ys(e|ed|es|er|ers|ing)$", r"\1yz\2"),
    (r"^(\w{3,})our(s|ed|ing|able|ite|ites)?$", r"\1or\2"),
    (r"^(\w{2,})tre(s)?$", r"\1ter\2"),
    (r"^(\w{3,})ogue(s)?$", r"\1og\2"),
))


@functools.lru_cache(maxsize=1 << 16)  # stem() runs on every word BM25 indexes: a text repeats its words
def american(word: str) -> str:
    """word (lower case) in American spelling where a British one has a regular counterpart."""
    for pattern, repl in _SPELLINGS:
        if pattern.match(word):
            return pattern.sub(repl, word)
    return word


@functools.lru_cache(maxsize=1 << 16)  # grounding stems every word of a sentence's section for each shown sentence
def stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    w = american(re.sub(r"'s?$", "", w))
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            return w[: len(w) - len(suffix)] + repl
    return w


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning: no stop words (checked before stemming: "does" is not "doe"),
    no numbers."""
    out = set()
    for raw in _WORD.findall(normalize(text)):
        low = re.sub(r"'s?$", "", raw.lower())
        if low in STOPWORDS or low[0].isdigit() or len(low) < 2:
            continue
        root = stem(low)
        if root not in STOPWORDS:
            out.add(root)
    return out


def numbers(text: str) -> set[str]:
    """Numbers in the text as canonical strings: "2,000" -> "2000", "six" -> "6", "third" -> "3", "threefold"
    -> "3". Dotted numbers are kept as written: "1.10" is a release, not 1.1. A capitalised number word after a
    capitalised word is part of a name and counts nothing: "World War One", "Air Force One", "Channel Seven"."""
    text = normalize(text)
    out = set()
    for m in _NUMBER.finditer(text):
        out.add(m.group(0).replace(",", ""))
    for w in _WORD.findall(_NAMED_NUMBER.sub(r"\1", text).lower()):
        base = w[:-2] if re.fullmatch(r"\d+(st|nd|rd|th)", w) else None
        if base:
            out.add(base)
        elif w in NUMBER_WORDS or (w.endswith("fold") and w[:-4] in _CARDINALS):  # "threefold" is a factor of 3
            v = NUMBER_WORDS[w.removesuffix("fold")]
            out.add(str(int(v)) if float(v).is_integer() else str(v))
    return out


def proper_names(text: str) -> set[str]:
    """Capitalised words (lower-cased, possessive removed), except common words at a sentence start."""
    out = set()
    for m in _CAP.finditer(normalize(strip_markers(text))):
        w = re.sub(r"'s?$", "", m.group(0)).lower()
        if w not in STOPWORDS and w not in NUMBER_WORDS and len(w) > 1:
            out.add(w)
    return out


# "per" is not a scale: "$8.25 per hour" is 8.25 of something; "per cent" is read as "percent" (_tokens).
_SCALE = frozenset("hundred thousand million billion trillion percent".split())


# A word runs on through hyphens only into letters: "bash-5.1" is "bash" and the number "5.1", not "bash-5" and "1".
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[A-Za-z][\w'’]*(?:-(?=[A-Za-z])[\w'’]*)*")


def _tokens(text: str) -> list[str]:
    text = re.sub(r"\bper\s+cent\b", "percent", normalize(text).replace("%", " percent "), flags=re.IGNORECASE)
    return [w.lower() for w in _TOKEN.findall(text)]


_CARDINALS = frozenset(list(NUMBER_WORDS)[: list(NUMBER_WORDS).index("hundred") + 1])
# A cardinal capitalised after a capitalised word on the same line: part of a name (numbers()).
_NAMED_NUMBER = re.compile(r"(\b[A-Z][\w'’]*[ \t]+)(?:" + "|".join(w.capitalize() for w in _CARDINALS) + r")\b")


def _num_key(tok: str) -> str | None:
    """Canonical value of a digit number or cardinal word; ordinals ("first") are not quantities."""
    if tok[0].isdigit():
        return next(iter(numbers(tok)), None)
    return str(NUMBER_WORDS[tok]) if tok in _CARDINALS else None


def _after(tokens: list[str], i: int, n: int) -> list[str]:
    """The first n content words after position i (scale words and stop words skipped)."""
    out = []
    for t in tokens[i + 1 : i + 1 + 2 * n + 2]:
        if t in _SCALE or t in STOPWORDS or _num_key(t):
            continue
        out.append(stem(t))
        if len(out) == n:
            break
    return out


def _scale_after(tokens: list[str], i: int) -> str | None:
    """The scale word right after a number ("million" in "23 million"), if any."""
    return tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1] in _SCALE else None


def numbers_bound(sentence: str, passage: str, window: int = 6) -> bool:
    """Each number keeps its meaning: the words right after it in the sentence ("15 million *enterprise
    users*") must follow the same number in the passage too, within a few words. Catches a true number
    attached to the wrong thing ("15 million enterprise users" when 15 million were paid daily users)."""
    st, pt = _tokens(strip_markers(sentence)), _tokens(passage)
    for i, tok in enumerate(st):
        key = _num_key(tok)
        if key is None:
            continue
        spots = [j for j, t in enumerate(pt) if _num_key(t) == key and _scale_after(pt, j) == _scale_after(st, i)]
        if not spots:
            return False  # "23" where the passage says "23 million"
        wanted = set(_after(st, i, 2))
        if not wanted:
            continue
        if not any(wanted <= {stem(t) for t in pt[j + 1 : j + 1 + window]} for j in spots):
            return False
    return True


# "The article discusses X" talks about the article instead of answering; "The article says that X" is fine.
_META = re.compile(r"^(the|this) (article|passage|text|report)s? (is (about|referring)|discuss|refer|describ|talk|focus|provid|explor|highlight)", re.I)


def is_meta(text: str) -> bool:
    return bool(_META.search(strip_markers(text)))


def is_refusal(text: str) -> bool:
    return bool(REFUSAL_PATTERNS.search(strip_markers(text)))


def idf_weights(texts: Sequence[str]) -> dict[str, float]:
    """Smoothed inverse document frequency of content words over the passages of a corpus."""
    n = len(texts)
    df: dict[str, int] = {}
    for t in texts:
        for w in content_words(t):
            df[w] = df.get(w, 0) + 1
    return {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}


def key_terms(question: str) -> set[str]:
    return {w for w in content_words(question) if w not in QUESTION_FORM}


def coverage(question: str, text: str, idf: dict[str, float], default_idf: float) -> float:
    """IDF-weighted share of the question's key terms (and numbers) that occur in text.
    Terms found in almost every passage (like the company's name) weigh little; terms the corpus never
    uses weigh most, so a question about something the article lacks ("net profit") scores low."""
    terms = key_terms(question)
    nums = numbers(question) - {"1"}  # "the first quarter" should not demand a digit 1
    if not terms and not nums:
        return 0.0  # nothing to check the passage against (e.g. a question in another script): not covered
    have = content_words(text)
    have_nums = numbers(text)
    total = found = 0.0
    for t in terms:
        w = max(idf.get(t, default_idf), 0.05)
        total += w
        found += w if t in have else 0.0
    for x in nums:
        total += default_idf
        found += default_idf if x in have_nums else 0.0
    return found / total if total else 1.0


def adds_information(sentence: str, question: str) -> bool:
    """False for answers that only restate the question ("The model is the flagship model")."""
    s = strip_markers(sentence)
    return bool(
        (content_words(s) - content_words(question))
        # "3" adds to "for how many years, under the GPLv3?": a digit inside a name is not a number stated,
        # while "GPT-3" still restates a question that names GPT-3
        or (numbers(_without_codes(s)) - numbers(_without_codes(question)))
        or (_codes(s) - _codes(question))
        or (proper_names(s) - proper_names(question))
        or (symbols(s) - symbols(question))
    )


def symbols(text: str) -> set[str]:
    """Tokens with no letters or digits to speak of ("%Q", "-z", "&&"): an answer can be one."""
    return {t for t in normalize(text).lower().split() if not content_words(t) and not numbers(t) and not proper_names(t)}


# A question may open with a clause of its own ("When grep -F is given many patterns, which algorithm ...?",
# "Under the licence, does ... count?", "In 2021, how many ...?"): what it asks, and so the kind of answer it
# wants, is in the clause after that one's comma.
_QUESTION_WORD = r"(?:what|which|who|whom|whose|how|why)"  # asks wherever it stands; "when"/"where" may open a clause
_INTERROGATIVE = re.compile(r"^\s*" + _QUESTION_WORD + r"\b", re.IGNORECASE)
# The verbs that open a yes/no question ("Does it ...?"), or follow "when"/"where" in a question.
AUXILIARY = r"(?:is|are|was|were|did|does|do|has|have|had|can|could|will|would|should|shall|may|might|must)"
_ASKS = re.compile(r"^\s*(?:" + _QUESTION_WORD + r"|when|where|in what|in which|" + AUXILIARY + r")\b", re.IGNORECASE)
# "When did X ...", "Where is X ...": the question word asks at once; "When X is given ..." opens a clause.
_ASKING_WHEN = re.compile(r"^\s*(?:when|where)\s+" + AUXILIARY + r"\b", re.IGNORECASE)


def asking_clause(question: str) -> str:
    """The clause of a question that asks: the question itself, or, after a leading clause ("When X is given,
    which Y ...?", "After X, is Y ...?"), the clause that follows its comma."""
    if _INTERROGATIVE.match(question) or _ASKING_WHEN.match(question):
        return question
    _, comma, rest = question.partition(",")
    return rest if comma and _ASKS.match(rest) else question


_WANTS_NUMBER = re.compile(
    r"^\s*(how (many|much|long|big|large|often|old)|in what year|what year|what (share|percentage|percent|proportion|fraction)|by how much|when)\b",
    re.IGNORECASE,
)
_WANTS_NAME = re.compile(r"^\s*(who|whom|what(?:'s| is| was) the name)\b", re.IGNORECASE)
# "At what time did the quake strike?" is answered by a time of day, not by the quake's "4.1" or "240 kilometres".
_WANTS_CLOCK = re.compile(r"\b(?:what|which)\s+(?:local\s+)?time\b(?!\s+(?:frame|limit|period|zone))", re.IGNORECASE)
_CLOCK = re.compile(r"\b\d{1,2}(?:[:.]\d{2})?\s?[ap]\.?m\b|\b\d{1,2}:\d{2}\b|\b(?:noon|midday|midnight|o'clock)\b",
                    re.IGNORECASE)
# A month's name, full or short, as dates write it ("7 March", "Sept. 2", "2021 Jan 7"); capitalised where it is
# used as a date kind, so the verb "may" is not one.
MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
         r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
# "On what date ...?" is answered by a date, not by the hour the same sentence gives ("10:00 a.m.").
_WANTS_DATE = re.compile(r"\b(?:what|which)\s+(?:date|day)\b", re.IGNORECASE)
_DATE = re.compile(rf"\b{MONTH}\b|\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\b|\b\d{{1,2}}(?:st|nd|rd|th)\b"
                   r"|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b|\b(?:[Tt]oday|[Tt]omorrow|[Yy]esterday)\b")
# "Who do I email?" is answered by an address, which is seldom capitalised: "base-passwd@packages.debian.org".
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def quantities(text: str) -> set[str]:
    """Numbers that stand as quantities: not part of a name or code like "GPT-3", "Q3" or "3D", and not
    the pronoun "one" ("one of China's most promising...")."""
    return numbers(_without_codes(re.sub(r"\bones?\b", " ", text, flags=re.IGNORECASE)))


# Names and codes that hold digits: "GPT-3", "GPLv3", "Q3", "3D". "10x" and "128K" are amounts (a factor, a
# size), not codes.
_CODE = re.compile(r"[A-Za-z]+-?\d+[A-Za-z]*|\d+[A-Za-z]{1,2}\b(?<!st)(?<!nd)(?<!rd)(?<!th)(?<!\d[xXkKMG])(?<!\d[KMG]B)")


def _without_codes(text: str) -> str:
    return _CODE.sub(" ", normalize(text))


def _codes(text: str) -> set[str]:
    return {m.group(0).lower() for m in _CODE.finditer(normalize(text))}


def answers_kind(sentence: str, question: str) -> bool:
    """A "how many / when / what year" question needs a number (or date) in the answer, a "what time" question a
    time of day, a "what date" question a date, a "who" question a name: an answer of the wrong kind ("it
    relaxed its rules recently") is no answer. Also asked of a sentence with its context: one without any such
    answer can ground none."""
    s = strip_markers(sentence)
    question = asking_clause(question)
    if _WANTS_NUMBER.search(question) and not quantities(s):
        return False
    if re.search(r"\b(percentage|percent|share of)\b", question, re.I) and not re.search(r"%|\bper ?cent", s, re.I):
        return False
    if _WANTS_NAME.search(question) and not proper_names(s) - proper_names(question) and not _ADDRESS.search(s):
        return False
    if _WANTS_CLOCK.search(question) and not _CLOCK.search(normalize(s)):
        return False
    if _WANTS_DATE.search(question) and not _DATE.search(normalize(s)):
        return False
    return True

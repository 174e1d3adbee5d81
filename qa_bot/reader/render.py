"""The text the reader and the check are shown: numbered sentences with their document labels (pure functions)."""
from __future__ import annotations

from collections.abc import Sequence

from .. import ground, prompts
from ..types import Sentence


def labelled(sentences: Sequence[Sentence], several_documents: bool) -> bool:
    """Whether each sentence is shown with its document label: with one document (and nothing uploaded among the
    shown sentences) the label only names that document again."""
    return several_documents or len({s.source for s in sentences}) > 1


def numbered(sentences: Sequence[Sentence], several_documents: bool) -> str:
    """The sentences in the given order (small readers favour the first ones), numbered from 1; with several
    documents a sentence is preceded by its label (title and heading, where the release, version or date a question
    names is often written) unless the sentence before had the same one."""
    show_labels = labelled(sentences, several_documents)
    lines, last = [], None
    for i, s in enumerate(sentences, 1):
        if show_labels and s.label and s.label != last:
            lines.append(prompts.label_line(s.label))
            last = s.label
        lines.append(prompts.SENTENCE_LINE.format(n=i, text=" ".join(s.text.split())))
    return "\n".join(lines)


def whole_text(sentences: Sequence[Sentence], several_documents: bool) -> str:
    """A text read whole as the reader sees it: in document order, the same text before every question."""
    return numbered(sorted(sentences, key=lambda x: (x.source, x.start)), several_documents)


def passage_text(sentences: Sequence[Sentence], several_documents: bool) -> str:
    """Passages as the reader sees them: each document's sentences in document order, the documents in the order
    of their best sentence."""
    rank: dict[str, int] = {}
    for x in sentences:
        rank.setdefault(x.source, len(rank))
    return numbered(sorted(sentences, key=lambda x: (rank[x.source], x.start)), several_documents)


def reader_user(query: str, sentences: Sequence[Sentence], several_documents: bool, *, whole: bool,
                ordered: bool) -> str:
    """The reader's prompt after its fixed instructions: the sentences (a text read whole in document order,
    passages in document order, else best first), then the question (a yes/no one with the hint that "No" is an
    answer too, after the sentences so that a held text is not read again)."""
    text = (whole_text(sentences, several_documents) if whole else passage_text(sentences, several_documents)
            if ordered else numbered(sentences, several_documents))
    hint = prompts.YES_NO_HINT if ground.is_yes_no(query) else ""
    return prompts.READER_USER.format(sentences=text, question=query + hint)


def check_user(found: ground.Grounded, query: str, sentences: Sequence[Sentence], several_documents: bool,
               template: str | None = None) -> str:
    """The check's prompt: the evidence sentence (with its label when the reader saw labels), the question and
    the answer found."""
    evidence = " ".join(found.text.split())
    if found.label and labelled(sentences, several_documents):
        evidence = f"{prompts.label_line(found.label, max_chars=None)} {evidence}"
    return (template or prompts.CHECK_USER).format(evidence=evidence, question=query, answer=found.answer)

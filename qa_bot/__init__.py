"""qa_bot: answers questions about a folder of articles, citing the exact passages it used.

    from qa_bot import QABot
    bot = QABot()                      # docs_corpus/ and the bundled local model
    answer = bot.ask("When did Alibaba go public in New York?")
    print(answer.text, answer.citations)

Heavy modules (torch, sentence-transformers, faiss, langchain) are imported lazily, on first use.
"""
from .prompts import REFUSAL, REFUSAL_MANY
from .errors import BackendError, CorpusError, FilterError, InvalidQuestion, QABotError
from .filters import Filter
from .formats_base import Metadata
from .settings import Settings
from .types import Answer, AnswerStream, Bot, Chunk, Citation, Hit, Stage

__all__ = [
    "QABot", "QARetriever", "Settings", "Answer", "AnswerStream", "Bot", "Chunk", "Citation", "Hit", "Stage",
    "QABotError", "InvalidQuestion", "FilterError", "CorpusError", "BackendError", "REFUSAL", "REFUSAL_MANY",
    "Filter", "Metadata",
]


def __getattr__(name):  # lazy: `import qa_bot` stays cheap for the CLI's --help and for tests with fakes
    if name == "QABot":
        from .pipeline import QABot

        return QABot
    if name == "QARetriever":  # imports langchain-core
        from .lc import QARetriever

        return QARetriever
    raise AttributeError(name)

"""The plain LangChain RAG tutorial's pipeline, run with qa_bot's own reader and scored by qa_bot's own eval.

    .venv/bin/python benchmarks/tutorial_pipeline.py QUESTIONS.jsonl [--corpus DIR] [--out DIR]

A baseline for measuring, not part of the product: what qa_bot's retrieval, grounding and refusal rules add over
the pipeline most projects start from (python.langchain.com, "Build a Retrieval Augmented Generation (RAG) App"),
with everything else held equal. Held equal: the documents (qa_bot.ingest.load_corpus, the extracted text the scorer
locates evidence in, so spans mean the same), the embedding model (SentenceTransformerEmbedder built from Settings
as QABot.embedder builds it), the reader (qa_bot.llm.LLMProvider: the same GGUF behind the same in-process
llama.cpp server, through the same ChatOpenAI client) and the scorer (qa_bot.eval.run_eval). The tutorial's own:

- split: RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50, add_start_index=True), per document;
- retrieval: dense only, the top 4 chunks by inner product of L2-normalised vectors (= cosine), exact, in numpy;
- prompt: rlm/rag-prompt as one human message (no system message), the 4 chunks joined by blank lines, in an
  LCEL chain prompt | llm | StrOutputParser; free text (no JSON schema), temperature 0, max_tokens 128.

The Answer it gives the scorer: text and draft = the reply as written; citations = the 4 retrieved chunks numbered
1-4 with their exact spans (what the tutorial shows a user beside the answer), so citation precision is the share
of shown chunks that overlap the evidence; retrieved = the same 4 as Hits. `abstained` is REFUSAL below, a
pattern searched anywhere in the reply: the prompt asks the model to say "I don't know", and the 1.5B reader
also writes "the context does not mention ...". A reply that says so and then answers anyway counts as a refusal
(the script prints how many such refusals contain a gold answer, so the rule's cost can be read off).

Needs langchain-text-splitters, which is not a dependency of qa_bot (no test uses it):
    .venv/bin/pip install langchain-text-splitters
Prints qa_bot.eval_report.headline, the refusals that hold a gold answer, and the load average before and after;
writes predictions.jsonl, metrics.json and report.md into --out (default eval/runs/tutorial-<time>/).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa_bot.errors import InvalidQuestion, QABotError, QuestionFileError  # noqa: E402
from qa_bot.settings import Settings  # noqa: E402
from qa_bot.types import Answer, Chunk, Citation, Hit  # noqa: E402

# The hub prompt rlm/rag-prompt, the one the tutorial pulls, verbatim (its spaces before the newlines included).
RAG_PROMPT = ("You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
              "answer the question. If you don't know the answer, just say that you don't know. Use three sentences "
              "maximum and keep the answer concise.\nQuestion: {question} \nContext: {context} \nAnswer:")
CHUNK_SIZE, CHUNK_OVERLAP, TOP_K = 500, 50, 4  # the tutorial's
MAX_TOKENS, TEMPERATURE = 128, 0.0

# A reply that says it does not know: the prompt's own "I don't know" and the ways the reader words the same.
REFUSAL = re.compile(
    r"\b(?:don'?t|do not|doesn'?t|does not) know\b"
    r"|\b(?:does|do)(?: not|n'?t) (?:say|mention|provide|specify|state)\b"
    r"|\bnot (?:mentioned|provided|specified|stated)\b"
    r"|\bno information\b",
    re.I)


def says_unknown(reply: str) -> bool:
    """REFUSAL anywhere in the reply (curly apostrophes read as straight ones)."""
    return REFUSAL.search(reply.replace("\u2019", "'")) is not None


class TutorialRAG:
    """The tutorial pipeline behind the interface run_eval calls: warm_up(), ask(question) -> Answer, settings,
    model_info(), close()."""

    def __init__(self, corpus_dir: str | Path, settings: Settings | None = None):
        from qa_bot.llm import LLMProvider

        settings = settings or Settings.from_env()
        self.settings = settings.replace(corpus_dir=Path(corpus_dir).expanduser(), llm_max_tokens=MAX_TOKENS,
                                         llm_temperature=TEMPERATURE)
        # No prefix tag: the prompt's fixed part is ~60 tokens, not worth a saved KV cache (which would also take
        # room from qa_bot's own saved states in the shared budget, llm_state_mb).
        self._provider = LLMProvider(self.settings, "")
        self._docs = None
        self._chunks: list[Chunk] = []
        self._vectors: np.ndarray | None = None
        self._chain = None

    # --- the parts, built once ------------------------------------------------------------------------
    def _embedder(self):
        # As QABot builds it, so both pipelines embed alike.
        from qa_bot.embedders import make_embedder

        return make_embedder(self.settings)

    def _index(self) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        from qa_bot.ingest import load_corpus

        docs, _skipped = load_corpus(self.settings.corpus_dir, self.settings.max_file_bytes)
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP,
                                                  add_start_index=True)
        chunks = []
        for doc in docs:
            for part in splitter.create_documents([doc.text]):
                start = part.metadata["start_index"]
                end = start + len(part.page_content)
                # The splitter finds start_index by searching the text; the scorer needs text[start:end] exactly.
                if start < 0 or doc.text[start:end] != part.page_content:
                    raise QABotError(f"{doc.source}: the splitter's start_index {start} does not locate its chunk")
                chunks.append(Chunk(id=f"{doc.source}:{start}", source=doc.source, start=start, end=end,
                                    text=part.page_content))
        self.embedder = self._embedder()
        self._docs = {d.source: d for d in docs}
        self._chunks = chunks
        self._vectors = self.embedder.embed([c.text for c in chunks])

    def _build_chain(self):
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate

        prompt = ChatPromptTemplate.from_messages([("human", RAG_PROMPT)])
        return prompt | self._provider.get() | StrOutputParser()

    def _ready(self) -> None:
        if self._vectors is None:
            self._index()
        if self._chain is None:
            self._chain = self._build_chain()

    def warm_up(self) -> "TutorialRAG":
        """Read, split and embed the corpus, start the reader and have it answer once, so the first question
        does not pay for loading (run_eval leaves this out of the per-question latency, as it does QABot's)."""
        self._ready()
        self._read("-", "-")
        return self

    def model_info(self) -> dict:
        return {**self._provider.info(), "pipeline": "langchain-rag-tutorial", "chunk_size": CHUNK_SIZE,
                "chunk_overlap": CHUNK_OVERLAP, "top_k": TOP_K, "embedding_model": self.settings.embedding_model}

    def close(self) -> None:
        self._provider.close()

    # --- answering ------------------------------------------------------------------------------------
    def retrieve(self, question: str) -> list[Hit]:
        q = self.embedder.embed_query([question])[0]
        scores = self._vectors @ q
        order = np.argsort(-scores, kind="stable")[:TOP_K]  # exact; ties keep corpus order
        return [Hit(self._chunks[i], float(scores[i])) for i in order]

    def _read(self, question: str, context: str) -> str:
        from qa_bot.llm import backend_error

        try:
            return self._chain.invoke({"question": question, "context": context})
        except QABotError:
            raise
        except Exception as exc:  # noqa: BLE001 - a timeout or server error: one row's error, not the whole run
            raise backend_error(exc, self.settings) from exc

    def ask(self, question: str) -> Answer:
        from qa_bot.ingest import document_title

        self._ready()
        t0 = time.perf_counter()
        hits = self.retrieve(question)
        t1 = time.perf_counter()
        reply = self._read(question, "\n\n".join(h.chunk.text for h in hits))  # the tutorial's format_docs
        t2 = time.perf_counter()
        cites = []
        for n, h in enumerate(hits, 1):
            c, doc = h.chunk, self._docs[h.chunk.source]
            cites.append(Citation(n=n, source=c.source, start=c.start, end=c.end, text=c.text,
                                  title=document_title(doc), date=doc.meta.date or "", page=doc.page(c.start)))
        return Answer(question=question, text=reply.strip(), abstained=says_unknown(reply), citations=tuple(cites),
                      retrieved=tuple(hits), timings={"retrieve": t1 - t0, "read": t2 - t1}, draft=reply)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def refusals_with_gold(predictions: Path) -> tuple[int, int]:
    """(refused answerable questions whose reply still contains a gold alias, refused answerable questions)."""
    from qa_bot.eval import answer_matches

    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    refused = [r for r in rows if r["answerable"] and r["abstained"]]
    return sum(answer_matches(r["answer"], r["gold_answers"]) for r in refused), len(refused)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", help="JSONL question file (docs/question_format.md)")
    parser.add_argument("--corpus", default=None, help="corpus folder (default: the configured corpus_dir)")
    parser.add_argument("--out", default=None, help="output folder (default: eval/runs/tutorial-<YYYYmmdd-HHMMSS>/)")
    args = parser.parse_args(argv)
    from qa_bot.eval import load_questions, run_eval
    from qa_bot.eval_report import headline

    try:
        load_questions(args.questions)  # a bad file fails before any model loads
        settings = Settings.from_env()
        corpus = Path(args.corpus).expanduser() if args.corpus else settings.corpus_dir
        out = Path(args.out) if args.out else ROOT / "eval" / "runs" / time.strftime("tutorial-%Y%m%d-%H%M%S")
        print(f"load before: {_loadavg()}", flush=True)
        bot = TutorialRAG(corpus, settings)
        try:
            metrics = run_eval(args.questions, bot=bot, corpus_dir=corpus, out_dir=out)
        finally:
            bot.close()
    except (InvalidQuestion, QuestionFileError) as exc:
        print(f"tutorial_pipeline: error: {exc}", file=sys.stderr)
        return 2
    except QABotError as exc:
        print(f"tutorial_pipeline: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        if exc.name != "langchain_text_splitters":
            raise
        print("tutorial_pipeline: error: langchain-text-splitters is not installed "
              "(.venv/bin/pip install langchain-text-splitters)", file=sys.stderr)
        return 1
    print(headline(metrics))
    gold, refused = refusals_with_gold(out / "predictions.jsonl")
    print(f"  refusals of answerable questions whose reply holds a gold answer: {gold} of {refused}")
    print(f"  warm-up {metrics['warm_up_s']:.1f} s; load average at start {metrics['run']['loadavg_start']}, "
          f"at end {metrics['run']['loadavg_end']}; /proc/loadavg now: {_loadavg()}")
    print(f"wrote {out}/ (predictions.jsonl, metrics.json, report.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

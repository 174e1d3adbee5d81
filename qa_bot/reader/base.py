"""A reader over any LangChain chat model: an OpenAI-compatible server's (vLLM, llama.cpp, a hosted API) or one
built by the caller. It renders the prompts, sends them, and parses the replies; what it may do differs by server,
so a server that rejects JSON-schema output or log-probabilities (HTTP 400) is asked again without them, once."""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import ground, prompts
from ..errors import InvalidQuestion, QABotError
from ..llm import Deadline, LLMProvider, ReplyTooLong, backend_error, exception_chain, is_context_overflow
from ..llm import deadline as llm_deadline
from ..question import check_prompt_budget
from ..settings import Settings
from . import render

log = logging.getLogger("qa_bot")


@dataclass(frozen=True)
class Reply:
    """One LLM reply: its text, and its tokens' log-probabilities when they were asked for and given (each as
    OpenAI's chat format has it: {"token", "logprob", "top_logprobs": [...]})."""

    text: str
    logprobs: tuple[dict, ...] = ()
    finish: str = ""  # the server's finish_reason: "length" is a reply cut at max_tokens; "" when not given


class Reader:
    """read (sentences + question -> draft), check (evidence + question + answer -> verdict), call (any prompt)."""

    holds_texts = False  # whether each question's whole text is worth holding (a server whose state is kept)

    def __init__(self, settings: Settings, model: Any = None):
        """model: a LangChain chat model; None for the one settings name (started on first use)."""
        self.settings = settings
        self._model = model
        self.provider = LLMProvider(settings, prompts.prefix_tag(settings.reader_check))
        self.json_output = True  # cleared once if the server rejects response_format
        self.logprobs = True  # cleared once if it rejects logprobs (the check then takes its verdict as written)
        self.warm = False  # the reader has answered once: for readiness()
        self.holding = ""  # the whole text the server's slot holds now (hold), "" for none

    @property
    def model(self):
        return self._model if self._model is not None else self.provider.get()

    @model.setter
    def model(self, model) -> None:
        self._model = model

    def info(self) -> dict:
        """Which reader answers: backend, model name, file and its sha256 (for eval reports)."""
        if self._model is not None:
            return {"backend": "custom", "model": type(self._model).__name__}
        return self.provider.info()

    # Whether the packaged reader reads a whole text, or long passages, well (LocalReader); any other reads both.
    @property
    def reads_whole(self) -> bool:
        return self.settings.reader_whole

    @property
    def reads_passages(self) -> bool:
        return bool(self.settings.reader_tokens)

    # --- calls ------------------------------------------------------------------------------------------
    def call(self, system: str, user: str, schema: dict, name: str, until: Deadline | None = None) -> str:
        """One reader call through LCEL (prompt | model); JSON-schema output where the server has it. `until` is
        the question's LLM deadline: it bounds this call, its retries and the calls after it."""
        return self.invoke(system, user, schema, name, until).text

    def invoke(self, system: str, user: str, schema: dict, name: str, until: Deadline | None = None,
               top_logprobs: int = 0, stop: Sequence[str] = ()) -> Reply:
        """call, and with top_logprobs > 0 the reply's token log-probabilities where the server gives them.
        `stop` ends a JSON-schema reply early (prompts.READER_STOP); a plain-text reply is never cut."""
        from langchain_core.messages import HumanMessage, SystemMessage

        until = until or Deadline(self.settings.llm_timeout)
        if until.passed():
            raise backend_error(TimeoutError("deadline"), self.settings)
        model = self.model
        if self.json_output:
            # In the request body, not as ChatOpenAI's response_format: that routes a stream through the SDK's
            # beta parsing helper, whose import costs ~0.75 s of the first question (and the server is the same).
            fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
            model = model.bind(extra_body={"response_format": fmt}, **({"stop": list(stop)} if stop else {}))
        if top_logprobs and self.logprobs:
            model = model.bind(logprobs=True, top_logprobs=top_logprobs)
        try:
            with llm_deadline(until):
                msg = model.invoke([SystemMessage(system), HumanMessage(user)])
            until.start()  # a model that is not an HTTP client (tests, a custom LangChain model): from its first reply
        except ReplyTooLong:
            return Reply("")  # a server that ignores max_tokens: read no further, like a reply cut at max_tokens
        except QABotError:
            raise
        except Exception as exc:
            if is_context_overflow(exc):  # a safety net under check_prompt_budget's estimate
                raise InvalidQuestion("the question with its follow-up context is too long for the reader: "
                                      "ask a shorter question") from None
            if top_logprobs and self.logprobs and _bad_request(exc):
                self.logprobs = False  # a server without logprobs: the check's verdict is taken as written
                log.warning("the LLM server rejected logprobs; taking the check's verdict as written")
                return self.invoke(system, user, schema, name, until, stop=stop)
            if self.json_output and _bad_request(exc):
                self.json_output = False  # a server without JSON-schema output: plain text, parsed leniently
                log.warning("the LLM server rejected response_format; falling back to plain answers")
                return self.invoke(system, user, schema, name, until, top_logprobs, stop)
            raise backend_error(exc, self.settings) from exc
        self.warm = True  # the reader answers: a question asked without warm_up warms it too
        content = msg.content if isinstance(msg.content, str) else str(msg.content)
        meta = msg.response_metadata or {}
        logprobs = meta.get("logprobs") if top_logprobs else None
        tokens = tuple(logprobs.get("content") or ()) if isinstance(logprobs, dict) else ()
        return Reply(content[: self.settings.max_reader_chars], tokens, str(meta.get("finish_reason") or ""))

    # --- the two prompts ----------------------------------------------------------------------------------
    def prompt(self, p) -> str:
        """The reader's prompt after its fixed instructions, for a Prepared question (context.Prepared)."""
        return render.reader_user(p.query, p.sentences, p.several, whole=p.whole, ordered=p.ordered)

    def read(self, p, until: Deadline | None = None) -> ground.ReaderDraft:
        """The reader's draft answer to a Prepared question: its short answer and the sentence it rests on."""
        user = self.prompt(p)
        check_prompt_budget((prompts.READER_SYSTEM, user), self.settings.prompt_token_budget)
        reply = self.invoke(prompts.READER_SYSTEM, user, prompts.READER_SCHEMA, "reader", until, stop=prompts.READER_STOP)
        # A reply cut at max_tokens may stop inside its answer ('{"answer": "2.7 billion, 9% of'): not an answer.
        return ground.parse_reader(reply.text, cut_at_stop=reply.finish != "length")

    def check(self, found: ground.Grounded, p, until: Deadline | None = None, *, system: str | None = None,
              user: str | None = None) -> tuple[str, float | None]:
        """The check's verdict on the found answer and, where the server gives log-probabilities, how likely
        its "yes" was against "no". system/user replace the shipped prompts (benchmarks/check_separation.py)."""
        prompt = render.check_user(found, p.query, p.sentences, p.several, user)
        reply = self.invoke(system or prompts.CHECK_SYSTEM, prompt, prompts.CHECK_SCHEMA, "check", until,
                            top_logprobs=ground.TOP_LOGPROBS)
        return verdict(reply.text), ground.yes_probability(reply.logprobs)

    def confirmed(self, found: ground.Grounded, p, until: Deadline | None = None) -> bool:
        return ground.check_passes(*self.check(found, p, until), self.settings.check_min_yes)

    # --- fixed prompts and held texts ---------------------------------------------------------------------
    def prime(self) -> None:
        """Have the reader read the reader's and the check's fixed instructions once, so that the first question
        reads only its own sentences (with a remote server this is one short call each)."""
        _ = self.model  # starts a local server, which loads the fixed prompts' saved state if there is one
        if self.provider.primed:
            return
        filler = prompts.SENTENCE_LINE.format(n=1, text="-")
        self.call(prompts.READER_SYSTEM, prompts.READER_USER.format(sentences=filler, question="-"),
                  prompts.READER_SCHEMA, "reader")
        self.prime_check()
        self.saved()

    def prime_check(self) -> None:
        if self.settings.reader_check:
            self.invoke(prompts.CHECK_SYSTEM, prompts.CHECK_USER.format(evidence="-", question="-", answer="-"),
                        prompts.CHECK_SCHEMA, "check", top_logprobs=ground.TOP_LOGPROBS)

    def saved(self, tag: str = "") -> None:
        """Keep the server's state after what it has just read, under `tag` (LocalReader; a remote server's
        state cannot be kept)."""

    def hold(self, p, primer: str) -> None:
        """Make the reader hold the text `p` reads whole (the corpus, or the best document), so that this
        question and the next ones about the same text read only themselves: it is read now with `primer` as
        its question, unless it is held already."""
        text = render.whole_text(p.sentences, p.several)
        if text == self.holding:
            return
        self.holding = text
        tag = prompts.prefix_tag(self.settings.reader_check, text)
        _ = self.model  # a local server starts here when nothing asked it before (its fixed prompts' state loads)
        if self.restored(tag):
            return
        self.read(replace(p, query=primer))
        self.prime_check()  # again: a saved state that failed to load may have emptied the check's slot
        self.saved(tag)

    def restored(self, tag: str) -> bool:
        """Whether the server's state saved under `tag` was loaded (LocalReader; never for a remote server)."""
        return False

    def close(self) -> None:
        self.provider.close()


def _bad_request(exc: BaseException) -> bool:
    """An HTTP 400 from the server, however the client wrapped it (langchain-openai re-raises openai's
    BadRequestError as its OpenAIInvalidRequestError, whose name no longer says so)."""
    return any(getattr(e, "status_code", None) == 400 or any(c.__name__ == "BadRequestError" for c in type(e).__mro__)
               for e in exception_chain(exc))


def verdict(raw: str) -> str:
    """The check's verdict: "yes" only from a JSON object whose verdict is yes, or a bare "yes"; anything
    else (a reply that prints its instructions, quoting both verdicts) is a no."""
    text = raw.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return "yes" if str(obj.get("verdict", "")).strip().lower() == "yes" else "no"
    return "yes" if text.lower().rstrip(".!") == "yes" else "no"

"""The bundled reader: a GGUF model in llama.cpp's server, run in this process (llm.LocalLlamaServer). Its KV
state can be saved and loaded, so the fixed instructions, and a text read whole, are read once and kept across
questions and restarts (within settings.llm_state_mb on disk)."""
from __future__ import annotations

from .base import Reader


class LocalReader(Reader):
    holds_texts = True  # each question's whole text is held, so that the next question about it reads only itself

    def _packaged_reads_whole(self) -> bool:
        """Whether the packaged reader in use reads long text well (weights.READERS); a GGUF of one's own does."""
        s = self.settings
        if s.gguf_path:
            return True
        from ..weights import READERS

        return s.reader not in READERS or READERS[s.reader].reads_whole

    @property
    def reads_whole(self) -> bool:
        return self.settings.reader_whole and self._packaged_reads_whole()

    @property
    def reads_passages(self) -> bool:
        return bool(self.settings.reader_tokens) and self._packaged_reads_whole()

    def saved(self, tag: str = "") -> None:
        """Keep the server's KV cache after what it has just read (the fixed prompts, or a text held after them),
        for the next start: a restart then skips reading it."""
        self.provider.save_primed(tag)

    def restored(self, tag: str) -> bool:
        return self.provider.restore(tag)

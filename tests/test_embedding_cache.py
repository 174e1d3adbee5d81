"""The index's embedding cache: re-indexing embeds only chunks whose text is new (keyed by chunk-text hash).

Fast: the hashing embedder (no model), counting every text it is asked to embed."""
from __future__ import annotations

import hashlib

from qa_bot.index_store import load_or_build
from qa_bot.ingest import Document, chunk_text
from qa_bot.testing import HashEmbedder

CHUNK_CHARS, CHUNK_TOKENS = 200, 256


class CountingEmbedder(HashEmbedder):
    def __init__(self):
        super().__init__()
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded.extend(texts)
        return super().embed(texts)


def doc(source: str, text: str) -> Document:
    return Document(source, text, hashlib.sha256(text.encode()).hexdigest())


def story(topic: str, n: int = 6) -> str:
    # Distinct sentences per topic, long enough that the document makes several chunks.
    return " ".join(f"The {topic} report number {i} says that output rose by {i * 7} percent in the {topic} sector."
                    for i in range(n))


def chunks_of(d: Document, emb) -> list:
    return chunk_text(d.text, d.source, max_chars=CHUNK_CHARS, max_tokens=CHUNK_TOKENS, count_tokens=emb.count_tokens)


def build(docs, corpus_dir, cache_dir, emb):
    return load_or_build(docs, corpus_dir=corpus_dir, cache_dir=cache_dir, embedder=emb,
                         chunk_chars=CHUNK_CHARS, chunk_max_tokens=CHUNK_TOKENS)


def test_adding_a_document_embeds_only_its_chunks(tmp_path):
    emb = CountingEmbedder()
    docs = [doc(f"d{i}.txt", story(t)) for i, t in enumerate(["steel", "cloud", "retail"])]
    first = build(docs, tmp_path / "corpus", tmp_path / "cache", emb)
    assert first.info["how"] == "built" and first.info["n_embedded"] == len(first.chunks)

    new = doc("d3.txt", story("shipping"))
    new_chunks = chunks_of(new, emb)
    assert len(new_chunks) > 1
    emb.embedded.clear()
    second = build(docs + [new], tmp_path / "corpus", tmp_path / "cache", emb)

    assert second.info["how"] == "built"
    assert second.info["n_embedded"] == len(new_chunks)
    assert sorted(emb.embedded) == sorted(c.text for c in new_chunks)
    assert len(second.chunks) == len(first.chunks) + len(new_chunks)
    # Reused vectors are the ones a full rebuild would compute: search still finds the old documents.
    hit = second.search(emb.embed(["steel report number 3"])[0], 1)[0]
    assert hit.chunk.source == "d0.txt"

    # Unchanged corpus: loaded from the cache, nothing embedded.
    emb.embedded.clear()
    third = build(docs + [new], tmp_path / "corpus", tmp_path / "cache", emb)
    assert third.info["how"] == "loaded" and emb.embedded == []


def test_changed_document_re_embeds_only_changed_chunks(tmp_path):
    emb = CountingEmbedder()
    original = doc("a.txt", story("energy", n=10))
    other = doc("b.txt", story("farming"))
    before = build([original, other], tmp_path / "c", tmp_path / "cache", emb)
    old_texts = {c.text for c in before.chunks}

    # Change one sentence near the end of a.txt: only the chunk(s) containing it get new text.
    edited_text = original.text.replace("report number 9 says", "report number 9 now says")
    assert edited_text != original.text
    edited = doc("a.txt", edited_text)
    changed = [c.text for c in chunks_of(edited, emb) if c.text not in old_texts]
    assert 1 <= len(changed) < len(chunks_of(edited, emb))

    emb.embedded.clear()
    after = build([edited, other], tmp_path / "c", tmp_path / "cache", emb)
    assert after.info["n_embedded"] == len(changed)
    assert sorted(emb.embedded) == sorted(changed)
    assert any("now says" in c.text for c in after.chunks)


def test_removing_a_document_embeds_nothing(tmp_path):
    emb = CountingEmbedder()
    docs = [doc("x.txt", story("mining")), doc("y.txt", story("banking"))]
    build(docs, tmp_path / "c", tmp_path / "cache", emb)
    emb.embedded.clear()
    after = build(docs[:1], tmp_path / "c", tmp_path / "cache", emb)
    assert after.info["n_embedded"] == 0 and emb.embedded == []
    assert {c.source for c in after.chunks} == {"x.txt"}

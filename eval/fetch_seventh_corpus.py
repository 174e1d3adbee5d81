"""Rebuild eval/seventh_corpus/: twelve real news web pages (CNN, TIME, WIRED, AP, ...) saved as HTML in the test
data of the newspaper4k 0.9.6 source distribution on PyPI. The pages are newspapers' copyrighted articles, so they
are not committed: this script downloads the sdist with pip, refuses any bytes but the pinned sha256, and copies
the twelve pages unchanged.

    .venv/bin/python eval/fetch_seventh_corpus.py
"""

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "newspaper4k-0.9.6.tar.gz"
SHA256 = "a3f2f0e017dddb6f1019ee77aaa8980e13e6ecea0b949abc7167aae4770d2d0e"
PAGES = ("ap_meta_refresh", "article_with_br", "article_with_divs", "cleveland.com1", "cnn_001", "cnn_002",
         "cnn_article", "cnn_test_nlp", "fox13now_001", "time_001", "video_article_02", "wired_001")
TARGET = Path(__file__).resolve().parent / "seventh_corpus"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                               "newspaper4k==0.9.6", "-d", tmp], capture_output=True, text=True)
        sdist = Path(tmp) / SDIST
        if done.returncode or not sdist.is_file():
            print(f"fetch_seventh_corpus: pip could not download {SDIST}: {done.stderr.strip()[-300:]}", file=sys.stderr)
            return 2
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SHA256:
            print(f"fetch_seventh_corpus: {SDIST} has sha256 {digest}, not {SHA256}; refused", file=sys.stderr)
            return 2
        TARGET.mkdir(exist_ok=True)
        with tarfile.open(sdist) as tar:
            for page in PAGES:
                member = tar.extractfile(f"newspaper4k-0.9.6/tests/data/html/{page}.html")
                (TARGET / f"{page}.html").write_bytes(member.read())
    print(f"{len(PAGES)} pages in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

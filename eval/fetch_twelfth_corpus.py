"""Rebuild twelfth_corpus/: thirteen real English web pages (blog posts, a news item, an interview, an annual
report, campaign and corporate pages, a social-media post, and three 2017 news stories) saved as HTML in the test
fixtures of two source distributions on PyPI:

- htmldate 1.3.2 (tests/cache/): ten pages (Python Insider, EFF, Greenpeace, Hertie School, Rosneft, Creative
  Commons, Visit Austria's Facebook page, the Wikimedia blog, Verfassungsblog, Die Weltwoche). Its cache holds
  69 pages, but most are German or French, or are home pages and terms of service with no article text, so it
  alone does not give a dozen English articles.
- webarticle2text 3.0.2 (webarticle2text/fixtures/compare/): three news stories (Fox News, NBC News, Time).

The pages are their publishers' copyrighted work, so they are not committed: this script downloads each sdist
with pip, refuses any bytes but the pinned sha256, and copies the pages unchanged under readable names (the
fixtures are named by host or by number).

    .venv/bin/python eval/fetch_twelfth_corpus.py

The pinned download and copy are eval/pinned_download.py's; runs from any working directory.
"""

import sys
from pathlib import Path

from pinned_download import copy_from_sdist

WHO = "fetch_twelfth_corpus"
SOURCES = [  # (requirement, sdist file name, sha256, {name in twelfth_corpus -> path inside the tarball})
    ("htmldate==1.3.2", "htmldate-1.3.2.tar.gz",
     "83830715faf0f22272d9e24e571a4955308a008107d0ca9359c0de77b99766cd",
     {name: f"htmldate-1.3.2/tests/cache/{fixture}" for name, fixture in {
         "python_release_360.html": "blog.python.org.html",
         "eff_annual_report_2015.html": "eff.org.2015.html",
         "greenpeace_indonesia_forests.html": "greenpeace.org.forests.html",
         "hertie_commission_radio.html": "hertie-school.org.leyen.html",
         "rosneft_licensing.html": "rosneft.com.licensing.html",
         "creativecommons_about.html": "creativecommons.org.html",
         "visitaustria_kitzbuehel.html": "facebook.com.visitaustria.html",
         "wikimedia_interactive_maps.html": "blog.wikimedia.interactivemaps.html",
         "verfassungsblog_decade.html": "verfassungsblog.de.decade.html",
         "weltwoche_forbes_interview.html": "weltwoche.ch.html",
     }.items()}),
    ("webarticle2text==3.0.2", "webarticle2text-3.0.2.tar.gz",
     "032bdb1f53c8558006c44fb0ec23349056aa69697ac371394b16a8b7cfb381ad",
     {name: f"webarticle2text-3.0.2/webarticle2text/fixtures/compare/{fixture}" for name, fixture in {
         "foxnews_comey_dossier.html": "page2.html",
         "nbcnews_somalia_seal.html": "page3.html",
         "time_mcconnell_obamacare.html": "page5.html",
     }.items()}),
]
TARGET = Path(__file__).resolve().parent / "twelfth_corpus"


def main() -> int:
    for requirement, filename, sha256, members in SOURCES:
        code = copy_from_sdist(requirement, filename, sha256, members, TARGET, WHO)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

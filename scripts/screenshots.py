"""Take the chat's screenshots in docs/ (issue 43): the phone layout with an answer's citation open, and a
question sent while another is answered (queued, then both answered in order). Light theme, Debian's headless
Chromium through Selenium, against the real UI around the fake bot of tests/fakes.py (as the browser tests run
it), so the pictures show the page itself, not the reader's wording.

    python scripts/screenshots.py            # docs/chat_phone.png, chat_queued.png, chat_queued_answered.png
    python scripts/screenshots.py --out DIR  # somewhere else

Each picture is taken only once the page is in the state it is meant to show; otherwise the script stops
with one line saying which state was not reached (and writes nothing for it).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/fakes.py: the fake app and how the tests start it
sys.path.insert(0, str(ROOT))

from fakes import free_port, start_server, stop_server, wait_until_up  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FIRST = "When did Alibaba go public in New York?"
SECOND = "Who is the chairman and chief executive officer of Alibaba Group?"
BUSY = "#qa-chat .qa-streaming, #qa-chat .qa-queued"
# A picture in the docs should stay small enough to read on a slow link; bigger ones are reduced to a palette.
MAX_BYTES = 200_000
PANEL_IN_VIEW = ("const r = document.querySelector('#qa-chat .qa-cite-panel').getBoundingClientRect(); "
                 "return r.top >= 0 && r.bottom <= innerHeight")


class NotReached(Exception):
    """The page did not reach the state a screenshot is meant to show."""


def driver(width: int, height: int, phone: bool = False):
    from selenium import webdriver

    profile = tempfile.mkdtemp(prefix="qa-shots-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    d.set_page_load_timeout(60)
    if phone:  # a headless window cannot be made as narrow as a phone: emulate the device (as the tests do)
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        d.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    d.qa_profile = profile
    return d


def close(d) -> None:
    d.quit()
    shutil.rmtree(d.qa_profile, ignore_errors=True)


def wait(d, timeout: float, what: str, cond):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(d, timeout).until(cond)
    except TimeoutException:
        raise NotReached(what) from None


def open_app(d, url: str) -> None:
    from selenium.webdriver.common.by import By

    d.get(f"{url}/?__theme=light")
    wait(d, 60, "the question box", lambda d: d.find_element(By.CSS_SELECTOR, "#qa-input textarea").is_enabled())


def texts(d, css: str) -> list[str]:
    return d.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.replace(/\\s+/g, ' ').trim())", css)


def save(d, path: Path) -> None:
    """The viewport as PNG; reduced to a 256-colour palette if it is over MAX_BYTES (flat UI colours survive it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(path))
    if path.stat().st_size > MAX_BYTES:
        from PIL import Image

        with Image.open(path) as im:
            im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1000} KB")


def phone_shot(url: str, out: Path) -> None:
    """390x844: a question answered, its [1] tapped, the cited sentence in the panel under the answer, in view."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = driver(500, 900, phone=True)
    try:
        open_app(d, url)
        box = d.find_element(By.CSS_SELECTOR, "#qa-input textarea")
        box.send_keys(FIRST)
        box.send_keys(Keys.ENTER)
        wait(d, 60, "the phone's answer", lambda d: any("2014" in t for t in texts(d, "#qa-chat .qa-answer"))
             and not d.find_elements(By.CSS_SELECTOR, BUSY))
        marker = d.find_element(By.CSS_SELECTOR, "#qa-chat .qa-answer [data-citation]")
        sentence = marker.find_element(By.CSS_SELECTOR, ".qa-preview-text").get_attribute("textContent").strip()
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", marker)
        marker.click()
        wait(d, 20, "the tapped citation's panel", lambda d: any(
            sentence[:40] in t for t in texts(d, "#qa-chat .qa-cite-panel")))
        time.sleep(1.0)  # the document's update and the scroll it makes settle before the picture
        # The question, its answer and the open panel together on the screen: the page's top (its title) if the
        # panel fits under it, else the chat's top at the screen's top.
        for scroll in ("window.scrollTo(0, 0)", "document.querySelector('#qa-chat').scrollIntoView({block: 'start'})"):
            d.execute_script(scroll)
            time.sleep(0.3)
            if d.execute_script(PANEL_IN_VIEW):
                break
        else:
            raise NotReached("the citation panel in view on the phone")
        save(d, out / "chat_phone.png")
    finally:
        close(d)


def queued_shots(url: str, out: Path) -> None:
    """1366x900 against the slow fake: the second question queued while the first is written, then both answered
    in the order asked, the chat and Sources still there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = driver(1366, 900)
    try:
        open_app(d, url)
        box = d.find_element(By.CSS_SELECTOR, "#qa-input textarea")
        box.send_keys(FIRST)
        box.send_keys(Keys.ENTER)
        wait(d, 20, "the first answer being written",
             lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))
        # With the Ask button, as the test does: Enter while Enter's own event runs is dropped by Gradio.
        box = d.find_element(By.CSS_SELECTOR, "#qa-input textarea")
        box.send_keys(SECOND)
        d.find_element(By.ID, "qa-send").click()
        wait(d, 10, "the second question shown queued",
             lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-queued")
             and d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))
        save(d, out / "chat_queued.png")
        wait(d, 90, "both questions answered", lambda d: len(texts(d, "#qa-chat .qa-answer")) == 2
             and not d.find_elements(By.CSS_SELECTOR, BUSY))
        # The second question's own event runs after the first drained the queue: it must change nothing.
        time.sleep(2.0)
        questions, answers = texts(d, "#qa-chat .qa-user"), texts(d, "#qa-chat .qa-answer")
        in_order = (len(questions) == 2 and FIRST in questions[0] and SECOND in questions[1]
                    and "2014" in answers[0] and "Daniel Zhang" in answers[1])
        if not in_order or not d.find_elements(By.CSS_SELECTOR, "#qa-sources button.qa-src"):
            raise NotReached(f"both answered in order with Sources shown (questions {questions}, answers {answers})")
        save(d, out / "chat_queued_answered.png")
    finally:
        close(d)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNG files (default: docs/)")
    a = ap.parse_args()
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        print("screenshots: needs Debian's Chromium: apt-get install -y chromium chromium-driver", file=sys.stderr)
        return 2
    logs = Path(tempfile.mkdtemp(prefix="qa-shots-logs-"))
    try:
        for args, shoot in ((["--upload-bytes", "1048576"], phone_shot), (["--delay", "0.3"], queued_shots)):
            port = free_port()
            proc, url = start_server(["tests/fakes.py", "--port", str(port), *args], port,
                                     logs / f"{shoot.__name__}.log")
            try:
                wait_until_up(url, proc, timeout=120)
                shoot(url, a.out.resolve())
            finally:
                stop_server(proc)
    except NotReached as e:
        print(f"screenshots: the page did not reach the state to show: {e} (server logs in {logs})", file=sys.stderr)
        return 1
    shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The chat's rows of issue 43 in Debian's headless Chromium, with the fake bot (tests/fakes.py): a queued question
leaves the chat and Sources in place, bubbles' accessible names are their plain text, a citation's preview closes
and covers nothing, the phone layout (390x844, emulated), a too-long question stays in its box, and the small
items (added documents in the header and sources, the upload limit, the vote's confirmation, Stop, thumbs).

Screenshots go to test-output/ (scripts/screenshots.py takes the ones in docs/ from the same states).
"""
from __future__ import annotations

import time

import pytest

from conftest import ROOT
from test_browser import (CHROMEDRIVER, CHROMIUM, OUT, ask, open_app, send, texts,  # noqa: F401
                          upload, visible_in_viewport)
from test_look import make_driver

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the project's test extra")
from selenium.webdriver import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from fakes import free_port, start_server, stop_server, wait_until_up  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                 reason="needs Debian's Chromium: apt-get install -y chromium chromium-driver")]

HTML_PAGE = ROOT / "tests" / "data" / "mixed_corpus" / "harbor_gazette_ferry.html"
BUSY = "#qa-chat .qa-streaming, #qa-chat .qa-queued"


def serve(*args: str, log: str):
    port = free_port()
    proc, url = start_server(["tests/fakes.py", "--port", str(port), *args], port, OUT / log)
    try:
        wait_until_up(url, proc, timeout=120)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


@pytest.fixture(scope="module")
def app():
    proc, url = serve("--upload-bytes", "1048576", log="chat43_fake_server.log")
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def slow():
    """Answers take ~4 s to read, then ~0.3 s a piece: time to queue a question or press Stop."""
    proc, url = serve("--delay", "0.3", log="chat43_slow_server.log")
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture
def desktop():
    d = make_driver(1366, 900)
    try:
        yield d
    finally:
        d.qa_cleanup()


@pytest.fixture
def phone():
    """A 390x844 phone screen (device emulation: a headless window cannot be made that narrow)."""
    d = make_driver(500, 900)
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    d.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    try:
        yield d
    finally:
        d.qa_cleanup()


def fresh(driver, url):
    """The app with an empty chat (this browser may keep an earlier test's chat)."""
    open_app(driver, url)
    driver.execute_script("arguments[0].click()", driver.find_element(By.ID, "qa-new"))  # set-up: while the page settles
    WebDriverWait(driver, 20).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg"))


def chat_counts(driver) -> dict:
    return driver.execute_script("""return {
      questions: document.querySelectorAll('#qa-chat .qa-user').length,
      answers: document.querySelectorAll('#qa-chat .qa-answer').length,
      sources: document.querySelectorAll('#qa-sources button.qa-src').length,
      highlight: document.querySelectorAll('#qa-doc mark.qa-focus').length};""")


# --- row 1: a question sent while an answer is written ---------------------------------------------------------

def test_a_queued_question_leaves_the_chat_and_sources_in_place(desktop, slow):
    fresh(desktop, slow)
    send(desktop, "When did Alibaba go public in New York?")
    WebDriverWait(desktop, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))
    # Sent with the Ask button (Enter while Enter's own event runs is dropped by Gradio): its answering event
    # waits behind the first, which answers both questions; it then finds nothing left to answer.
    desktop.find_element(By.CSS_SELECTOR, "#qa-input textarea").send_keys(
        "Who is the chairman and chief executive officer of Alibaba Group?")
    desktop.find_element(By.ID, "qa-send").click()
    WebDriverWait(desktop, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-queued"))
    want = {"questions": 2, "answers": 2, "sources": 1, "highlight": 1}
    try:
        WebDriverWait(desktop, 60).until(lambda d: chat_counts(d) == want and not d.find_elements(By.CSS_SELECTOR, BUSY))
    finally:
        desktop.save_screenshot(str(OUT / "chat43_queued_answered.png"))
    assert chat_counts(desktop) == want, chat_counts(desktop)
    # The second question's own answering event runs after the first drained the queue: it must change nothing.
    for _ in range(16):
        time.sleep(0.25)
        assert chat_counts(desktop) == want, chat_counts(desktop)
    assert "Daniel Zhang" in texts(desktop, "#qa-chat .qa-answer") and "Daniel Zhang" in texts(desktop, "#qa-sources")


# --- row 2: what a screen reader says for a bubble ------------------------------------------------------------

def bubble_labels(driver) -> list[tuple[str, str]]:
    """(aria-label, visible text) of every chat bubble, as the page has them."""
    return driver.execute_script("""return [...document.querySelectorAll(
        '#qa-chat [data-testid="bot"], #qa-chat [data-testid="user"]')].map(e =>
        [e.getAttribute('aria-label') || '', (e.querySelector('.qa-msg') || e).innerText.replace(/\\s+/g, ' ').trim()]);""")


def test_bubbles_are_named_by_their_plain_text(desktop, app):
    fresh(desktop, app)
    ask(desktop, "When did Alibaba go public in New York?")
    ask(desktop, "What colour is the sky over Alibaba's Paris office?")  # a refusal
    WebDriverWait(desktop, 10).until(lambda d: len(bubble_labels(d)) == 4)
    time.sleep(0.5)  # the labels are set as the bubbles render
    labels = bubble_labels(desktop)
    for label, shown in labels:
        assert "<" not in label and "class=" not in label and "qa-" not in label, label
        assert label.endswith(shown) and shown, (label, shown)
    assert [label.split(":")[0] for label, _ in labels] == ["Question", "Answer"] * 2
    assert labels[1][0] == "Answer: 2014 [1]"
    assert labels[3][0].startswith("Answer: No answer The article does not say.")


# --- row 3: a citation's preview ------------------------------------------------------------------------------

def panel(driver) -> str | None:
    """The citation panel's text when it is shown, else None."""
    return driver.execute_script("""const p = [...document.querySelectorAll('#qa-chat .qa-cite-panel')]
        .find(e => e.offsetParent !== null); return p ? p.innerText.replace(/\\s+/g, ' ').trim() : null;""")


def uncovered(driver) -> list[str]:
    """The chat's markers and buttons that something else covers at their centre (nothing may)."""
    return driver.execute_script("""return [...document.querySelectorAll(
        '#qa-chat [data-citation], #qa-chat button')].filter(e => {
          const r = e.getBoundingClientRect(); if (!r.width || r.bottom < 0 || r.top > innerHeight) return false;
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          return hit && !e.contains(hit) && !hit.contains(e); }).map(e => e.outerHTML.slice(0, 80));""")


def test_a_citation_preview_closes_and_covers_nothing(desktop, app):
    fresh(desktop, app)
    ask(desktop, "Summarize the article")  # three cited sentences: [1] [2] [3]
    markers = desktop.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-answer [data-citation]")
    assert len(markers) == 3
    cited = [m.find_element(By.CSS_SELECTOR, ".qa-preview-text").get_attribute("textContent") for m in markers]
    ActionChains(desktop).move_to_element(markers[0]).perform()  # hover: the sentence is shown
    WebDriverWait(desktop, 10).until(lambda d: panel(d) and cited[0] in panel(d))
    assert uncovered(desktop) == []
    ActionChains(desktop).move_to_element(desktop.find_element(By.ID, "qa-corpus")).perform()
    WebDriverWait(desktop, 10).until(lambda d: panel(d) is None, "the hover preview stayed after the mouse left")
    markers[0].click()  # a click (or tap) keeps it open ...
    WebDriverWait(desktop, 10).until(lambda d: panel(d) and cited[0] in panel(d))
    assert uncovered(desktop) == []
    desktop.save_screenshot(str(OUT / "chat43_citation_panel.png"))
    markers[1].click()  # ... and the next marker can be clicked
    WebDriverWait(desktop, 10).until(lambda d: panel(d) and cited[1] in panel(d))
    ActionChains(desktop).send_keys(Keys.ESCAPE).perform()  # Escape closes it
    WebDriverWait(desktop, 10).until(lambda d: panel(d) is None, "Escape did not close the preview")
    markers[2].click()
    WebDriverWait(desktop, 10).until(lambda d: panel(d) and cited[2] in panel(d))
    desktop.find_element(By.ID, "qa-corpus").click()  # a click elsewhere closes it
    WebDriverWait(desktop, 10).until(lambda d: panel(d) is None, "a click elsewhere did not close the preview")
    markers[0].click()
    WebDriverWait(desktop, 10).until(lambda d: panel(d) and cited[0] in panel(d))
    desktop.find_element(By.CSS_SELECTOR, "#qa-input textarea").click()  # focus leaves it: closed
    WebDriverWait(desktop, 10).until(lambda d: panel(d) is None, "the preview stayed after the marker lost focus")


# --- row 4: the phone layout ----------------------------------------------------------------------------------

def in_view(driver, css: str) -> bool:
    return driver.execute_script("""const e = document.querySelector(arguments[0]); if (!e) return false;
        const r = e.getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight;""", css)


def overlaps(driver, a: str, b: str) -> list[str]:
    """Elements matching `b` that a visible element matching `a` overlaps."""
    return driver.execute_script("""const A = [...document.querySelectorAll(arguments[0])].filter(e => e.offsetParent);
        return [...document.querySelectorAll(arguments[1])].filter(e => A.some(x => { const p = x.getBoundingClientRect(),
          q = e.getBoundingClientRect(); return p.width && q.width && p.left < q.right && q.left < p.right
          && p.top < q.bottom && q.top < p.bottom; })).map(e => e.textContent.slice(0, 40));""", a, b)


def horizontal_scroll(driver) -> int:
    return driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_phone_first_screen_examples_and_cited_sentence_in_view(phone, app):
    fresh(phone, app)
    assert phone.execute_script("return innerWidth") == 390
    # The first screen: the question box and the example questions, whole; the empty chat takes little room.
    assert in_view(phone, "#qa-input textarea")
    examples = phone.find_elements(By.CSS_SELECTOR, "#qa-examples button")
    assert len(examples) >= 4
    for b in examples[:4]:
        assert phone.execute_script("const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && "
                                    "r.bottom <= innerHeight && arguments[0].scrollWidth <= arguments[0].clientWidth", b), b.text
    assert phone.find_element(By.ID, "qa-chat").size["height"] < 844 * 0.3
    assert horizontal_scroll(phone) == 0
    phone.save_screenshot(str(OUT / "chat43_phone_first_screen.png"))
    examples[0].click()  # an example asks at once
    WebDriverWait(phone, 30).until(lambda d: "2014" in texts(d, "#qa-chat .qa-answer"))
    ask(phone, "Who is the chairman and chief executive officer of Alibaba Group?")
    ask(phone, "How much revenue did the cloud business generate in the first quarter?")
    assert overlaps(phone, "#qa-chat label, #qa-chat [data-testid='block-label']", "#qa-chat .qa-msg") == []
    # Tap the first answer's [1]: its sentence shows under it, in view, and stays there.
    first = phone.find_element(By.CSS_SELECTOR, "#qa-chat .qa-answer [data-citation]")
    sentence = first.find_element(By.CSS_SELECTOR, ".qa-preview-text").get_attribute("textContent")
    phone.execute_script("arguments[0].scrollIntoView({block: 'center'})", first)
    first.click()
    WebDriverWait(phone, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-doc mark.qa-focus"))
    time.sleep(1.0)  # the document's update and any scroll it makes
    assert panel(phone) and sentence in panel(phone)
    shown = phone.find_element(By.CSS_SELECTOR, "#qa-chat .qa-cite-panel")
    assert visible_in_viewport(phone, shown), "the cited sentence is not in view after the tap"
    assert horizontal_scroll(phone) == 0
    phone.save_screenshot(str(OUT / "chat43_phone_cited.png"))


# --- row 5: a question over the limit -----------------------------------------------------------------------

def test_a_too_long_question_stays_in_its_box(desktop, app):
    fresh(desktop, app)
    box = desktop.find_element(By.CSS_SELECTOR, "#qa-input textarea")
    long_q = "Why did the cloud unit grow so fast this year? " * 45  # 2,115 characters
    desktop.execute_script("const t = arguments[0]; t.value = arguments[1];"
                           "t.dispatchEvent(new Event('input', {bubbles: true}));", box, long_q.strip())
    box.send_keys(Keys.ENTER)
    WebDriverWait(desktop, 20).until(lambda d: "2,000" in texts(d, "#qa-count"))
    assert "too long" in texts(desktop, "#qa-count")
    time.sleep(1)
    assert box.get_attribute("value") == long_q.strip()  # nothing typed is lost
    assert not desktop.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg")  # and nothing was asked


# --- row 6: small items ----------------------------------------------------------------------------------------

def test_an_added_page_is_counted_named_and_read_as_people_see_it(desktop, app):
    fresh(desktop, app)
    assert "1 MB" in desktop.find_element(By.ID, "qa-upload").text  # the limit is stated before trying
    upload(desktop, HTML_PAGE)
    WebDriverWait(desktop, 30).until(lambda d: "Added" in texts(d, "#qa-upload-note"))
    WebDriverWait(desktop, 10).until(lambda d: "1 you added (harbor_gazette_ferry.html)" in texts(d, "#qa-corpus"))
    ask(desktop, "What did the city council vote to approve for Gull Island?")
    shown = texts(desktop, "#qa-sources") + texts(desktop, "#qa-doc .qa-doc-title") + texts(desktop, "#qa-chat")
    assert "harbor_gazette_ferry.html (added)" in shown and "session/" not in shown
    # The page's headline is a line of its own in the listed passage, not run into the first sentence.
    lines = desktop.execute_script("""const b = document.querySelector('#qa-sources .qa-passage');
        const find = (s) => { const w = document.createTreeWalker(b, NodeFilter.SHOW_TEXT); let node;
          while ((node = w.nextNode())) { const i = node.textContent.indexOf(s); if (i >= 0) {
            const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + s.length);
            return r.getClientRects()[0]; } } return null; };
        const head = find('Gull Island'), body = find('The city council voted');
        return head && body ? [head.bottom, body.top] : null;""")
    assert lines and lines[0] <= lines[1] + 1, lines
    desktop.find_element(By.ID, "qa-remove").click()
    WebDriverWait(desktop, 20).until(lambda d: "you added" not in texts(d, "#qa-corpus"))


def test_a_vote_is_confirmed_beside_its_thumbs(desktop, app):
    fresh(desktop, app)
    ask(desktop, "When did Alibaba go public in New York?")
    like = desktop.find_element(By.CSS_SELECTOR, '#qa-chat button[aria-label="Like"]')
    like.click()
    WebDriverWait(desktop, 20).until(lambda d: "saved" in texts(d, "#qa-chat .qa-voted"))
    note = desktop.find_element(By.CSS_SELECTOR, "#qa-chat .qa-voted")
    thumb = desktop.find_element(By.CSS_SELECTOR, '#qa-chat button[aria-label="Like"], #qa-chat button[aria-label="Liked"]')
    gap = abs(note.rect["y"] - thumb.rect["y"])
    assert gap < 120, gap  # beside the thumbs, not far below the chat


def stop_colour(driver) -> str:
    return driver.execute_script("return getComputedStyle(document.getElementById('qa-stop')).backgroundColor")


RED = "rgb(185, 28, 28)"


def test_stop_is_red_only_while_answering_and_a_stopped_bubble_has_no_thumbs(desktop, slow):
    fresh(desktop, slow)
    assert stop_colour(desktop) != RED
    send(desktop, "Tell me about Alibaba's cloud business.")
    WebDriverWait(desktop, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))
    assert stop_colour(desktop) == RED
    desktop.find_element(By.ID, "qa-stop").click()
    WebDriverWait(desktop, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-stopped"))
    WebDriverWait(desktop, 10).until(lambda d: stop_colour(d) != RED)
    time.sleep(0.5)
    thumbs = [b for b in desktop.find_elements(By.CSS_SELECTOR, '#qa-chat button[aria-label="Like"], '
                                               '#qa-chat button[aria-label="Dislike"]') if b.is_displayed()]
    assert thumbs == [], "a stopped answer can be rated"


# --- axe-core: the new parts, in the four configurations (desktop and phone, light and dark) ----------------

@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_axe_finds_nothing_with_the_citation_panel_open(screen, app, request):
    from test_look import AXE, axe

    if not AXE.exists():
        pytest.skip("needs npm axe-core: bash scripts/setup.sh --test")
    driver = request.getfixturevalue(screen)
    found = {}
    for theme in ("light", "dark"):
        fresh(driver, f"{app}?__theme={theme}")
        found[f"{theme}/empty"] = axe(driver)["violations"]
        ask(driver, "Summarize the article")
        ask(driver, "When did Alibaba go public in New York?")
        driver.find_element(By.CSS_SELECTOR, '#qa-chat button[aria-label="Like"]').click()
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-voted"))
        marker = driver.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-answer [data-citation]")[-1]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", marker)
        marker.click()
        WebDriverWait(driver, 10).until(lambda d: panel(d))
        found[f"{theme}/answered_panel"] = axe(driver)["violations"]
        driver.save_screenshot(str(OUT / f"chat43_axe_{screen}_{theme}.png"))
    assert not any(found.values()), found

"""End to end in Debian's headless Chromium (apt: chromium chromium-driver): the real UI, served by a subprocess.

The fake-bot tests check the UI itself (streaming, citations, highlight, refusal, uploads, escaping, offline);
`test_real_app_first_answer` runs `python app.py` with the real models and records launch-to-first-answer time.
Screenshots go to test-output/.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ROOT

OUT = ROOT / "test-output"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's Chromium: apt-get install -y chromium chromium-driver"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the project's test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from fakes import free_port, start_server, stop_server, wait_until_up  # noqa: E402


@pytest.fixture
def browser():
    profile = tempfile.mkdtemp(prefix="qa-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def fake_app():
    port = free_port()
    proc, url = start_server(["tests/fakes.py", "--port", str(port), "--upload-bytes", "2000"], port,
                             OUT / "browser_fake_server.log")
    try:
        wait_until_up(url, proc, timeout=120)
        yield url
    finally:
        stop_server(proc)


def open_app(driver, url):
    driver.get(url)
    return WebDriverWait(driver, 60).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#qa-input textarea")))


def ask(driver, question: str, timeout: float = 60):
    """Type a question, press Enter, wait until the streamed answer is final (no cursor); returns the bubble."""
    box = driver.find_element(By.CSS_SELECTOR, "#qa-input textarea")
    n = len(driver.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg:not(.qa-user)"))
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait = WebDriverWait(driver, timeout)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg:not(.qa-user)")) > n)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming, #qa-chat .qa-queued"))
    return driver.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg:not(.qa-user)")[-1]


def texts(driver, css: str) -> str:
    """Text of all matches, read in one JS call (the chat re-renders while streaming; element handles go stale)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent).join('\\n')", css)


def saw_streaming(driver) -> bool:
    return bool(driver.execute_script("return window.__qaSawStreaming === true"))


def watch_streaming(driver):
    """Record (in the page) whether a partial answer was ever on screen, so the test can tell streaming happened."""
    driver.execute_script("""
      window.__qaSawStreaming = false;
      new MutationObserver(() => { if (document.querySelector('#qa-chat .qa-streaming .qa-cite, '
        + '#qa-chat .qa-streaming:not(:empty)')) window.__qaSawStreaming = true; })
        .observe(document.body, {subtree: true, childList: true, characterData: true});""")


def watch_stages(driver):
    """Record (in the page) every progress stage an answer bubble showed."""
    driver.execute_script("""
      window.__qaStages = [];
      new MutationObserver(() => document.querySelectorAll('#qa-chat .qa-stage').forEach((e) => {
        if (!window.__qaStages.includes(e.textContent)) window.__qaStages.push(e.textContent); }))
        .observe(document.body, {subtree: true, childList: true, characterData: true});""")


def stages_seen(driver) -> list[str]:
    return driver.execute_script("return window.__qaStages || []")


def external_requests(driver) -> list[str]:
    """URLs the page requested from anywhere but the app's own host (performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            u = msg["params"]["request"]["url"]
            if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).hostname not in (
                    "127.0.0.1", "localhost"):
                urls.append(u)
    return urls


def visible_in_viewport(driver, el) -> bool:
    return driver.execute_script("""
      const r = arguments[0].getBoundingClientRect();
      let p = arguments[0].parentElement;
      while (p) { const q = p.getBoundingClientRect(); const s = getComputedStyle(p);
        if (/(auto|scroll|hidden)/.test(s.overflowY) && (r.bottom <= q.top || r.top >= q.bottom)) return false;
        p = p.parentElement; }
      return r.width > 0 && r.height > 0 && r.top < innerHeight && r.bottom > 0;""", el)


def check_answer_with_highlight(driver, bubble, shot: Path):
    assert "qa-answer" in bubble.get_attribute("class"), bubble.text
    markers = bubble.find_elements(By.CSS_SELECTOR, "sup.qa-cite")
    assert markers and markers[0].is_displayed(), f"no visible citation marker in {bubble.text!r}"
    n = markers[0].text  # e.g. "[1]"
    src = WebDriverWait(driver, 20).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#qa-sources button.qa-src")))
    assert src.find_element(By.CSS_SELECTOR, ".qa-n").text == n
    assert src.find_element(By.CSS_SELECTOR, ".qa-name").text  # the source name is shown
    passage = src.find_element(By.CSS_SELECTOR, ".qa-passage").text
    src.click()  # the first cited passage opens by itself; clicking must keep it shown (refusal test: opens it)
    mark = WebDriverWait(driver, 20).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "#qa-doc mark.qa-focus")))
    assert mark.text == f"{n}{passage}" or mark.text == f"{n} {passage}", (mark.text, passage)
    WebDriverWait(driver, 10).until(lambda d: visible_in_viewport(d, mark), "highlight not scrolled into view")
    shot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_chat_streams_answer_with_citation_and_highlight(browser, fake_app):
    open_app(browser, fake_app)
    watch_streaming(browser)
    bubble = ask(browser, "When did Alibaba go public in New York?")
    assert "2014" in bubble.text
    assert saw_streaming(browser), "the answer appeared at once; expected streamed partial text"
    meta = browser.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-timings")[-1].text
    assert "retrieval" in meta and "ms" in meta
    check_answer_with_highlight(browser, bubble, OUT / "browser_fake_answer.png")
    assert external_requests(browser) == []  # offline: nothing fetched from the internet


def test_follow_up_refusal_examples_and_clear(browser, fake_app):
    open_app(browser, fake_app)
    ask(browser, "Tell me about Alibaba's cloud business.")
    bubble = ask(browser, "How much revenue did it make?")
    assert "2.7 billion" in bubble.text
    assert "searched for" in browser.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-meta")[-1].text
    refusal = ask(browser, "What colour is the sky over Alibaba's Paris office?")  # about the article, not in it
    assert "qa-refusal" in refusal.get_attribute("class") and "The article does not say." in refusal.text
    assert refusal.value_of_css_property("font-style") == "italic"  # looks different from an answer
    head = browser.find_element(By.CSS_SELECTOR, "#qa-sources .qa-closest .qa-head")
    assert "Closest passages" in head.text
    closest = browser.find_elements(By.CSS_SELECTOR, "#qa-sources button.qa-src")  # still lists passages
    assert closest and not browser.find_elements(By.CSS_SELECTOR, "#qa-doc mark")  # nothing opened by itself
    passage = closest[1].find_element(By.CSS_SELECTOR, ".qa-passage").text
    closest[1].click()  # selecting a passage opens the article with that span highlighted and in view
    mark = WebDriverWait(browser, 20).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "#qa-doc mark.qa-focus")))
    assert mark.text == passage
    WebDriverWait(browser, 10).until(lambda d: visible_in_viewport(d, mark), "highlight not scrolled into view")
    assert len(browser.find_element(By.CSS_SELECTOR, "#qa-doc .qa-doc-body").text) > 3 * len(passage)  # whole text
    browser.save_screenshot(str(OUT / "browser_fake_refusal.png"))
    browser.find_element(By.ID, "qa-clear").click()
    WebDriverWait(browser, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg"))
    # An example click asks right away.
    example = browser.find_element(By.XPATH, "//button[contains(., 'When did Alibaba go public')]")
    example.click()
    WebDriverWait(browser, 30).until(lambda d: "2014" in texts(d, "#qa-chat .qa-answer"))


EVIL = ("Zorblax memo.\n<script>window.__pwned = 1</script> The zorblax budget is <b>42 gold</b> coins "
        "<img src=x onerror=\"window.__pwned = 2\"> and {{value}} ${7*6} <a href=javascript:alert(1)>x</a>.\n")


def upload(driver, path: Path):
    # Gradio renders the hidden file input next to the button, not inside it.
    driver.find_element(By.XPATH, "//button[@id='qa-upload']/preceding-sibling::input[@type='file']").send_keys(
        str(path))


def test_own_document_with_html_renders_as_text(browser, fake_app, tmp_path):
    doc = tmp_path / "zorblax.txt"
    doc.write_text(EVIL, encoding="utf-8")
    open_app(browser, fake_app)
    upload(browser, doc)
    WebDriverWait(browser, 30).until(lambda d: "Added" in texts(d, "#qa-upload-note"))
    bubble = ask(browser, "What is the zorblax budget?")
    check_answer_with_highlight(browser, bubble, OUT / "browser_fake_own_document.png")
    doc_text = browser.find_element(By.CSS_SELECTOR, "#qa-doc .qa-doc-body").text
    for literal in ("<script>window.__pwned = 1</script>", "<b>42 gold</b>", "<img src=x onerror=",
                    "{{value}}", "${7*6}"):
        assert literal in doc_text, literal
    assert "<b>42 gold</b>" in bubble.text
    assert browser.execute_script("return window.__pwned") is None
    made = browser.execute_script("""return [...document.querySelectorAll(
        '#qa-chat script, #qa-chat img[onerror], #qa-chat b, #qa-chat a[href^=javascript],'
        + '#qa-sources script, #qa-sources img, #qa-sources b, #qa-doc script, #qa-doc img, #qa-doc b, #qa-doc a'
        )].map(e => e.outerHTML)""")
    assert made == [], made  # no element was created from the document's markup
    assert "zorblax.txt" in browser.find_element(By.CSS_SELECTOR, "#qa-doc .qa-doc-title").text


def test_the_filter_control_restricts_the_documents(browser, fake_app):
    """The chat's filter goes to the library: one that matches nothing is the answer's own one-line message."""
    open_app(browser, fake_app)
    browser.find_element(By.CSS_SELECTOR, "#qa-filter button, #qa-filter .label-wrap").click()
    box = WebDriverWait(browser, 20).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#qa-filter-source input")))
    box.send_keys("no_such_file.txt")
    bubble = ask(browser, "When did Alibaba go public in New York?")
    assert "no document matches --source no_such_file.txt" in bubble.text
    browser.save_screenshot(str(OUT / "browser_filter_no_match.png"))


def test_upload_errors_are_shown(browser, fake_app, tmp_path):
    open_app(browser, fake_app)
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)  # 5000 bytes; this server's limit is 2000
    upload(browser, big)  # refused by the page itself, before sending, with the library's message (issue 10)
    WebDriverWait(browser, 30).until(lambda d: "big.txt is too large (5 KB)" in texts(d, "#qa-upload-note"))
    binary = tmp_path / "blob.md"
    binary.write_bytes(bytes(range(256)) * 4)
    upload(browser, binary)
    WebDriverWait(browser, 30).until(lambda d: "blob.md" in texts(d, "#qa-upload-note"))
    note = browser.find_element(By.ID, "qa-upload-note")
    assert note.find_elements(By.CSS_SELECTOR, ".qa-error"), note.text


def test_busy_message_when_queue_is_full(browser):
    """With the queue full, a browser user gets Gradio's 'busy, please try again' notice and keeps the question."""
    from gradio_client import Client

    port = free_port()
    proc, url = start_server(["tests/fakes.py", "--port", str(port), "--delay", "0.4", "--queue-size", "1"], port,
                             OUT / "browser_busy_server.log")
    try:
        wait_until_up(url, proc, timeout=120)
        open_app(browser, url)
        c = Client(url, verbose=False)
        jobs = [c.submit("When did Alibaba go public in New York?", api_name="/ask")]  # runs ~6 s
        time.sleep(1.0)
        jobs.append(c.submit("Who is the chairman of Alibaba Group?", api_name="/ask"))  # waits: queue full
        time.sleep(1.0)
        box = browser.find_element(By.CSS_SELECTOR, "#qa-input textarea")
        box.send_keys("How much revenue did the cloud business make?" + Keys.ENTER)
        WebDriverWait(browser, 20).until(lambda d: "busy" in d.find_element(By.TAG_NAME, "body").text.lower())
        assert "try again" in browser.find_element(By.TAG_NAME, "body").text.lower()
        browser.save_screenshot(str(OUT / "browser_busy.png"))
        for j in jobs:
            j.result(timeout=60)
    finally:
        stop_server(proc)


def test_real_app_first_answer(browser):
    """`python app.py` with the real models: time from launch to the first verified answer in the browser."""
    pytest.importorskip("qa_bot.pipeline", reason="qa_bot.pipeline (the real library) is not there yet")
    port = free_port()
    t0 = time.monotonic()
    proc, url = start_server(["app.py", "--port", str(port)], port, OUT / "browser_real_server.log")
    try:
        up = wait_until_up(url, proc, timeout=300)
        open_app(browser, url)
        bubble = ask(browser, "When did Alibaba go public in New York?", timeout=600)
        first_answer = time.monotonic() - t0
        assert "2014" in bubble.text, bubble.text
        check_answer_with_highlight(browser, bubble, OUT / "browser_real_answer.png")
        assert external_requests(browser) == []
        watch_stages(browser)
        ask(browser, "What is Alibaba doing with its cloud unit?", timeout=300)
        assert any(re.fullmatch(r"Reading \d+ passages?…", x) for x in stages_seen(browser)), stages_seen(browser)
        follow = ask(browser, "How much revenue did it make?", timeout=300)
        assert "2.7 billion" in follow.text, follow.text
        assert "searched for" in texts(browser, "#qa-chat .qa-rewrite")  # the rewritten question, discreetly
        browser.save_screenshot(str(OUT / "browser_real_follow_up.png"))
        (OUT / "browser_real_timing.json").write_text(json.dumps(
            {"launch_to_server_up_s": round(up, 1), "launch_to_first_answer_s": round(first_answer, 1)}))
        print(f"\nlaunch -> server up {up:.1f}s, launch -> first answer {first_answer:.1f}s")
    finally:
        stop_server(proc)


# --- the chat's core behaviour (issue 10): citations, queue, Stop, reset, history ----------------------------

@pytest.fixture(scope="module")
def slow_app():
    """The fake app answering slowly (~4 s to read, then ~0.3 s a piece): time to send a second question or Stop."""
    port = free_port()
    log = OUT / "browser_slow_server.log"
    proc, url = start_server(["tests/fakes.py", "--port", str(port), "--delay", "0.3"], port, log)
    try:
        wait_until_up(url, proc, timeout=120)
        yield url, log
    finally:
        stop_server(proc)


def send(driver, question: str):
    box = driver.find_element(By.CSS_SELECTOR, "#qa-input textarea")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def highlight_text(driver) -> str:
    return driver.execute_script("const h = document.querySelector('#qa-doc [data-highlight]');"
                                 "return h ? h.textContent : null;")


def chat_state(driver) -> dict:
    """What a reset must clear, read from the page."""
    return driver.execute_script("""return {
      bubbles: document.querySelectorAll('#qa-chat .qa-msg').length,
      sources: document.querySelectorAll('#qa-sources button.qa-src').length,
      highlight: document.querySelectorAll('#qa-doc [data-highlight], #qa-doc mark').length};""")


def test_citation_markers_preview_and_highlight_their_own_sentence(browser, fake_app):
    from selenium.webdriver import ActionChains

    open_app(browser, fake_app)
    ask(browser, "When did Alibaba go public in New York?")
    ask(browser, "Who is the chairman and chief executive officer of Alibaba Group?")
    first, second = browser.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-answer [data-citation]")[:2]
    cited = [m.find_element(By.CSS_SELECTOR, ".qa-preview-text").get_attribute("textContent") for m in (first, second)]
    assert "2014" in cited[0] and cited[0] != cited[1]
    ActionChains(browser).move_to_element(first).perform()  # hover: the cited sentence is previewed under the answer
    WebDriverWait(browser, 10).until(lambda d: cited[0] in texts(d, "#qa-chat .qa-cite-panel:not([hidden])"))
    browser.save_screenshot(str(OUT / "browser_citation_preview.png"))
    for marker, want in ((second, cited[1]), (first, cited[0])):  # the earlier answer's citation is its own
        marker.click()
        WebDriverWait(browser, 20).until(lambda d: highlight_text(d) == want,
                                         f"highlighted {highlight_text(browser)!r}, cited {want!r}")
    mark = browser.find_element(By.CSS_SELECTOR, "#qa-doc [data-highlight]")
    WebDriverWait(browser, 10).until(lambda d: visible_in_viewport(d, mark), "highlight not scrolled into view")
    browser.execute_script("document.querySelector('#qa-doc .qa-doc-body').scrollTop = 1e6")  # read elsewhere
    WebDriverWait(browser, 10).until(lambda d: not visible_in_viewport(d, mark))
    first.click()  # the same citation again
    WebDriverWait(browser, 10).until(
        lambda d: visible_in_viewport(d, d.find_element(By.CSS_SELECTOR, "#qa-doc [data-highlight]")),
        "selecting the same citation again did not bring the highlight back")
    browser.save_screenshot(str(OUT / "browser_citation_highlight.png"))


def test_trash_icon_and_clear_chat_reset_the_same_state(browser, fake_app):
    open_app(browser, fake_app)
    after = {}
    for how in ("trash", "clear"):
        ask(browser, "Tell me about Alibaba's cloud business.")
        WebDriverWait(browser, 10).until(lambda d: chat_state(d)["highlight"] and chat_state(d)["sources"])
        if how == "trash":
            browser.find_element(By.CSS_SELECTOR, "#qa-chat button[aria-label='Clear']").click()  # the trash icon
        else:
            browser.find_element(By.ID, "qa-clear").click()
        WebDriverWait(browser, 10).until(lambda d: chat_state(d)["bubbles"] == 0)
        WebDriverWait(browser, 10).until(lambda d: chat_state(d) == {"bubbles": 0, "sources": 0, "highlight": 0})
        after[how] = chat_state(browser)
        ask(browser, "How much revenue did it make?")  # no follow-up memory: nothing rewritten
        assert "searched for" not in texts(browser, "#qa-chat .qa-meta")
        browser.find_element(By.ID, "qa-clear").click()
        WebDriverWait(browser, 10).until(lambda d: chat_state(d)["bubbles"] == 0)
    assert after["trash"] == after["clear"]


def test_history_survives_reload_until_new_chat(browser, fake_app):
    open_app(browser, fake_app)
    ask(browser, "When did Alibaba go public in New York?")
    browser.refresh()
    open_app(browser, fake_app)
    WebDriverWait(browser, 20).until(lambda d: "2014" in texts(d, "#qa-chat .qa-answer"))
    marker = browser.find_element(By.CSS_SELECTOR, "#qa-chat [data-citation]")
    want = marker.find_element(By.CSS_SELECTOR, ".qa-preview-text").get_attribute("textContent")
    marker.click()  # the restored answer's sources still work
    WebDriverWait(browser, 20).until(lambda d: highlight_text(d) == want)
    browser.save_screenshot(str(OUT / "browser_history_restored.png"))
    browser.find_element(By.ID, "qa-new").click()
    WebDriverWait(browser, 10).until(lambda d: chat_state(d)["bubbles"] == 0)
    browser.refresh()
    open_app(browser, fake_app)
    time.sleep(1)  # the restore runs on load; give it the chance to (wrongly) bring the old chat back
    assert chat_state(browser)["bubbles"] == 0


def test_question_sent_while_answering_is_queued_and_typing_is_kept(browser, slow_app):
    url, _ = slow_app
    open_app(browser, url)
    watch_stages(browser)
    send(browser, "When did Alibaba go public in New York?")
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))
    send(browser, "Who is the chairman and chief executive officer of Alibaba Group?")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-queued"))
    browser.save_screenshot(str(OUT / "browser_queued.png"))
    browser.find_element(By.CSS_SELECTOR, "#qa-input textarea").send_keys("a draft")  # typed, not sent
    busy = "#qa-chat .qa-streaming, #qa-chat .qa-queued"
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-answer")) == 2
                                     and not d.find_elements(By.CSS_SELECTOR, busy))
    answers = texts(browser, "#qa-chat .qa-answer")
    assert "2014" in answers and "Daniel Zhang" in answers, answers
    assert browser.find_element(By.CSS_SELECTOR, "#qa-input textarea").get_attribute("value") == "a draft"
    assert stages_seen(browser)[:3] == ["Searching the documents…", "Reading 3 passages…",
                                         "Checking the answer against its source…"]


def test_stop_cancels_generation_and_chat_stays_usable(browser, slow_app):
    url, log = slow_app
    open_app(browser, url)
    send(browser, "Tell me about Alibaba's cloud business.")
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))
    browser.find_element(By.ID, "qa-stop").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-stopped"))
    browser.save_screenshot(str(OUT / "browser_stopped.png"))
    WebDriverWait(browser, 20).until(  # the server closed the bot's answer stream (the model is free)
        lambda d: "answer stream closed early: Tell me about Alibaba's cloud business." in log.read_text())
    time.sleep(1)
    assert not browser.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming, #qa-chat .qa-answer")
    send(browser, "When did Alibaba go public in New York?")  # the chat still answers
    WebDriverWait(browser, 60).until(lambda d: "2014" in texts(d, "#qa-chat .qa-answer")
                                     and not d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming"))


def test_copy_gives_answer_with_sources_and_regenerate_asks_again(browser, fake_app):
    open_app(browser, fake_app)
    browser.execute_cdp_cmd("Browser.grantPermissions", {"origin": fake_app, "permissions": [
        "clipboardReadWrite", "clipboardSanitizedWrite"]})
    ask(browser, "When did Alibaba go public in New York?")
    cited = texts(browser, "#qa-chat .qa-preview-text")
    browser.find_element(By.CSS_SELECTOR, "#qa-chat button.qa-copy").click()
    WebDriverWait(browser, 10).until(lambda d: "Copied" in texts(d, "#qa-chat button.qa-copy"))
    copied = browser.execute_async_script("navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))")
    assert copied is not None and copied.startswith("2014 [1]") and f"[1] “{cited.strip()}”" in copied, copied
    watch_streaming(browser)
    browser.find_element(By.ID, "qa-regenerate").click()  # the last question again, replacing its answer
    WebDriverWait(browser, 30).until(saw_streaming, "Regenerate did not answer again")
    WebDriverWait(browser, 30).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-streaming, "
                                                                                    "#qa-chat .qa-queued"))
    WebDriverWait(browser, 30).until(lambda d: "2014" in texts(d, "#qa-chat .qa-answer"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-user")) == 1

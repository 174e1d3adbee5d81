"""The chat's look in Debian's headless Chromium with the fake bot: axe-core accessibility audits of the main
states in light and dark, a phone-width answer that stays in view, upload error messages, feedback to SQLite.

axe-core comes from npm (scripts/setup.sh --test installs it into .venv/axe); it is injected from disk, so the
test needs no network. Figures and screenshots go to test-output/.
"""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from qa_bot.feedback import FeedbackStore
from test_browser import CHROMEDRIVER, CHROMIUM, OUT, ask, open_app, visible_in_viewport  # noqa: F401

AXE = Path(sys.prefix) / "axe" / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not AXE.exists(), reason="needs npm axe-core: bash scripts/setup.sh --test")]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the project's test extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from fakes import free_port, start_server, stop_server, wait_until_up  # noqa: E402


def make_driver(width: int, height: int):
    import shutil
    import tempfile

    profile = tempfile.mkdtemp(prefix="qa-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    driver.qa_profile = profile
    driver.qa_cleanup = lambda: (driver.quit(), shutil.rmtree(profile, ignore_errors=True))
    return driver


@pytest.fixture(scope="module")
def look_app(tmp_path_factory):
    db = tmp_path_factory.mktemp("fb") / "feedback.sqlite3"
    port = free_port()
    proc, url = start_server(["tests/fakes.py", "--port", str(port), "--upload-bytes", "2000"], port,
                             OUT / "look_fake_server.log", env={"QA_BOT_FEEDBACK_DB": str(db)})
    try:
        wait_until_up(url, proc, timeout=120)
        yield url, db
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def desktop():
    d = make_driver(1400, 1000)
    try:
        yield d
    finally:
        d.qa_cleanup()


def axe(driver) -> dict:
    """axe-core's WCAG 2 A/AA rules on the page: {"serious": n, "critical": n, ..., "violations": [...]}"""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    res = driver.execute_async_script("""
      const done = arguments[arguments.length - 1];
      axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                         resultTypes: ['violations']})
        .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,
              sample: v.nodes.slice(0, 3).map(n => n.failureSummary + ' @ ' + n.target.join(' '))}))))
        .catch(e => done([{id: 'axe-error', impact: 'critical', nodes: 0, sample: [String(e)]}]));""")
    counts = {k: sum(v["nodes"] for v in res if v["impact"] == k) for k in ("minor", "moderate", "serious", "critical")}
    return {**counts, "violations": res}


def states(driver, url: str, theme: str):
    """Yield (name) after putting the page in each main state: empty, answered (its source highlighted), refusal."""
    open_app(driver, f"{url}?__theme={theme}")
    yield "empty"
    ask(driver, "When did Alibaba go public in New York?")
    WebDriverWait(driver, 20).until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#qa-doc mark.qa-focus")))
    yield "answered_highlighted"
    ask(driver, "What is the Alibaba share price today?")
    yield "refusal"


def test_axe_no_serious_violations_light_and_dark(look_app, desktop):
    url, _ = look_app
    results = {}
    for theme in ("light", "dark"):
        for state in states(desktop, url, theme):
            r = axe(desktop)
            results[f"{theme}/{state}"] = r
            desktop.save_screenshot(str(OUT / f"look_{theme}_{state}.png"))
            if theme == "light" and state == "empty":
                assert "Ask the article: Alibaba to spin off its cloud" in desktop.find_element(By.ID, "qa-corpus").text
    (OUT / "axe_results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    summary = {k: {i: v[i] for i in ("minor", "moderate", "serious", "critical")} for k, v in results.items()}
    print(json.dumps(summary))
    bad = {k: [v for v in r["violations"] if v["impact"] in ("serious", "critical")] for k, r in results.items()}
    assert not any(bad.values()), json.dumps({k: v for k, v in bad.items() if v}, indent=1)


def test_phone_answer_stays_in_view(look_app):
    url, _ = look_app
    phone = make_driver(390, 844)
    try:
        open_app(phone, url)
        bubble = ask(phone, "When did Alibaba go public in New York?")
        WebDriverWait(phone, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#qa-doc mark.qa-focus")))
        phone.execute_script("return new Promise(r => setTimeout(r, 800))")  # let any smooth scroll finish
        phone.save_screenshot(str(OUT / "look_phone_answer.png"))
        assert visible_in_viewport(phone, bubble), "the answer left the screen after asking"
    finally:
        phone.qa_cleanup()


def test_feedback_vote_is_written_to_sqlite(look_app, desktop):
    url, db = look_app
    open_app(desktop, url)
    ask(desktop, "When did Alibaba go public in New York?")
    desktop.find_element(By.CSS_SELECTOR, "#qa-fb-comment textarea").send_keys("right year")
    desktop.find_element(By.CSS_SELECTOR, "#qa-fb-down").click()
    WebDriverWait(desktop, 20).until(lambda d: "Thanks" in d.find_element(By.ID, "qa-fb-note").text)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT vote, question, answer, citations, comment, model FROM feedback").fetchall()
    assert len(rows) == 1
    vote, question, answer, citations, comment, model = rows[0]
    assert (vote, question, comment) == (-1, "When did Alibaba go public in New York?", "right year")
    assert "2014" in answer and json.loads(citations)[0]["source"] == "alibaba_cloud_spinoff.txt"
    assert json.loads(model)["backend"] == "fake"


def test_a_thumb_on_an_earlier_answer_rates_that_answer(look_app, desktop):
    """The 👍/👎 under each answer bubble (Gradio's own) stores a vote on that answer, not on the last one."""
    url, db = look_app
    open_app(desktop, url)
    desktop.find_element(By.ID, "qa-new").click()  # the history of earlier tests is restored on load
    WebDriverWait(desktop, 20).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#qa-chat .qa-msg"))
    ask(desktop, "Who is the chairman of Alibaba Group?")
    ask(desktop, "When did Alibaba go public in New York?")
    likes = desktop.find_elements(By.CSS_SELECTOR, '#qa-chat button[aria-label="Like"]')
    assert len(likes) == 2
    before = len(FeedbackStore(db).rows()) if db.exists() else 0
    likes[0].click()
    WebDriverWait(desktop, 20).until(lambda d: "chairman" in d.find_element(By.ID, "qa-fb-note").text)
    rows = FeedbackStore(db).rows()
    assert len(rows) == before + 1 and (rows[-1]["vote"], rows[-1]["question"]) == (1, "Who is the chairman of Alibaba Group?")


@pytest.mark.parametrize("name, data, says", [
    ("big.txt", b"word " * 1000, "big.txt is too large (5 KB); a document can be at most 2 KB."),
    ("notes.xlsx", b"PK\x03\x04 tiny", "notes.xlsx cannot be added: only .txt, .md"),  # the library's list, whatever it holds
    ("notes.docx", b"PK\x03\x04 tiny", "notes.docx cannot be added: not a readable Word document"),
    ("latin.txt", "café".encode("latin-1") * 10, "latin.txt"),
    ("empty.md", b"", "empty.md"),
])
def test_upload_errors_one_message_in_one_place(look_app, desktop, tmp_path, name, data, says):
    """Each bad kind gets one human message in the upload note (no pop-up, no byte counts, no internal prefix)."""
    from test_browser import texts, upload

    url, _ = look_app
    open_app(desktop, url)
    path = tmp_path / name
    path.write_bytes(data)
    upload(desktop, path)
    WebDriverWait(desktop, 30).until(lambda d: name in texts(d, "#qa-upload-note"))
    note = texts(desktop, "#qa-upload-note")
    assert says in note and "session/" not in note and "bytes" not in note, note
    assert desktop.find_elements(By.CSS_SELECTOR, "#qa-upload-note .qa-error")
    assert not desktop.find_elements(By.CSS_SELECTOR, ".toast-body"), "a pop-up was shown as well"


def test_added_document_is_listed_and_can_be_removed(look_app, desktop, tmp_path):
    from test_browser import texts, upload

    url, _ = look_app
    open_app(desktop, url)
    doc = tmp_path / "zorblax.txt"
    doc.write_text("The zorblax festival is held every June in Quenby.", encoding="utf-8")
    upload(desktop, doc)
    WebDriverWait(desktop, 30).until(lambda d: d.execute_script(
        "const i = document.querySelector('#qa-added input'); return i ? i.value : ''") == "zorblax.txt")
    assert "qa-answer" in ask(desktop, "When is the zorblax festival held in Quenby?").get_attribute("class")
    desktop.find_element(By.ID, "qa-remove").click()
    WebDriverWait(desktop, 30).until(lambda d: "Removed zorblax.txt" in texts(d, "#qa-upload-note"))
    bubble = ask(desktop, "When is the zorblax festival held in Quenby?")
    assert "qa-refusal" in bubble.get_attribute("class"), bubble.text  # the removed document no longer answers


def test_over_long_question_is_counted_capped_and_refused(look_app, desktop):
    from selenium.webdriver.common.keys import Keys

    from test_browser import texts

    url, _ = look_app
    open_app(desktop, url)
    box = desktop.find_element(By.CSS_SELECTOR, "#qa-input textarea")
    long_q = "Why did the cloud unit grow so fast this year? " * 45  # 2,115 characters, over the 2,000 limit
    desktop.execute_script("const t = arguments[0]; t.value = arguments[1];"
                           "t.dispatchEvent(new Event('input', {bubbles: true}));", box, long_q[:-1])
    box.send_keys(" ")  # one real key press, as typing ends
    WebDriverWait(desktop, 10).until(lambda d: "too long" in texts(d, "#qa-count"))
    assert box.size["height"] < 260, box.size  # the box scrolls instead of filling the screen
    box.send_keys(Keys.ENTER)
    WebDriverWait(desktop, 30).until(lambda d: "2,000" in texts(d, "#qa-count .qa-over"))  # the limit named, not cut
    assert "too long" in texts(desktop, "#qa-count")
    assert box.get_attribute("value") == long_q  # and the text is still in the box, to shorten

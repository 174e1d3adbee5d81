"""The feedback store (SQLite), its export and summary, the CLI over it, and the eval report's feedback line."""
import csv
import io
import json
import os
import sqlite3

import pytest

from qa_bot import cli
from qa_bot.feedback import Feedback, FeedbackError, FeedbackStore, export, parse_vote

CITE = {"n": 1, "source": "a.txt", "start": 3, "end": 9, "text": "x, \"y\"\nz"}


def vote(store, v, comment="", q="Who?"):
    return store.add(Feedback(v, q, "Ann [1]", (CITE,), comment, {"reader": "qwen"}))


def test_rows_round_trip_every_field(tmp_path):
    store = FeedbackStore(tmp_path / "sub" / "fb.sqlite3")  # the folder is created on first write
    vote(store, "up", "spot on")
    vote(store, "down", q="Why, \"really\"?\nAnd?")
    rows = store.rows()
    assert [r["vote"] for r in rows] == [1, -1]
    assert rows[0]["citations"] == [CITE] and rows[0]["model"] == {"reader": "qwen"}
    assert rows[0]["comment"] == "spot on" and rows[1]["question"] == "Why, \"really\"?\nAnd?"
    assert rows[0]["created_at"].endswith("+00:00")
    # Stored in SQLite itself, readable by any client.
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT count(*), sum(vote) FROM feedback").fetchone() == (2, 0)
    assert store.summary() == {"n": 2, "up": 1, "down": 1, "with_comment": 1, "helpful_share": 0.5}


def test_export_csv_and_jsonl_parse_back(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    vote(store, 1, "a, b\n\"c\"")
    vote(store, -1)
    rows = store.rows()
    back = [json.loads(line) for line in export(rows, "jsonl").splitlines()]
    assert back == rows
    parsed = list(csv.DictReader(io.StringIO(export(rows, "csv"))))
    assert [p["comment"] for p in parsed] == ["a, b\n\"c\"", ""]
    assert json.loads(parsed[0]["citations"]) == [CITE] and parsed[1]["vote"] == "-1"
    with pytest.raises(FeedbackError, match="csv or jsonl"):
        export(rows, "xml")


def test_bad_votes_and_long_comments_are_refused_and_store_nothing(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    vote(store, "up")
    with pytest.raises(FeedbackError, match="up or down"):
        vote(store, "maybe")
    with pytest.raises(FeedbackError, match="at most 2,000"):
        vote(store, "up", "x" * 2001)
    assert len(store.rows()) == 1
    assert parse_vote(True) == 1 and parse_vote("dislike") == -1


def test_corrupt_database_is_a_clear_error_and_the_file_is_kept(tmp_path):
    path = tmp_path / "fb.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    store = FeedbackStore(path)
    with pytest.raises(FeedbackError, match="not a feedback database"):
        vote(store, "up")
    with pytest.raises(FeedbackError, match="not a feedback database"):
        store.rows()
    assert path.read_bytes() == b"this is not sqlite" * 100  # nothing overwritten


def test_a_path_that_cannot_be_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "dir.sqlite3").mkdir()  # unwritable as a file, even for root
    with pytest.raises(FeedbackError, match="Cannot use the feedback database"):
        vote(FeedbackStore(tmp_path / "dir.sqlite3"), "up")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FeedbackError, match="Cannot use the feedback database"):
        vote(FeedbackStore(tmp_path / "file" / "fb.sqlite3"), "up")  # its folder is a file


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_unwritable_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(FeedbackError, match="Cannot use the feedback database"):
            vote(FeedbackStore(ro / "fb.sqlite3"), "up")
    finally:
        ro.chmod(0o700)


def test_a_failed_insert_rolls_back_and_keeps_earlier_rows(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    vote(store, "up")
    with sqlite3.connect(store.path) as con:  # a trigger that fails the next insert, as a full disk would
        con.execute("CREATE TRIGGER boom BEFORE INSERT ON feedback BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(FeedbackError, match="disk full"):
        vote(store, "down")
    assert [r["vote"] for r in store.rows()] == [1]


def test_cli_export_and_summary(tmp_path, capsys):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    vote(store, "up", "good")
    vote(store, "down")
    out = tmp_path / "fb.csv"
    assert cli.main(["feedback", "export", "--db", str(db), "--format", "csv", "--out", str(out)]) == 0
    assert [r["vote"] for r in csv.DictReader(out.open(encoding="utf-8"))] == ["1", "-1"]
    assert "wrote 2 feedback rows" in capsys.readouterr().err
    assert cli.main(["feedback", "export", "--db", str(db)]) == 0
    assert [json.loads(x)["vote"] for x in capsys.readouterr().out.splitlines()] == [1, -1]
    assert cli.main(["feedback", "summary", "--db", str(db)]) == 0
    assert "2 votes, 1 up, 1 down (50% helpful), 1 with a comment" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"garbage" * 200)
    assert cli.main(["feedback", "export", "--db", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qa-bot: error:") and "not a feedback database" in err and "Traceback" not in err
    assert cli.main(["feedback", "export", "--db", str(tmp_path / "none.sqlite3")]) == 1
    assert "No feedback has been recorded yet" in capsys.readouterr().err
    good = tmp_path / "fb.sqlite3"
    vote(FeedbackStore(good), "up")
    assert cli.main(["feedback", "export", "--db", str(good), "--out", str(tmp_path / "no" / "dir" / "x")]) == 1
    assert "Cannot write" in capsys.readouterr().err


def test_eval_report_carries_the_feedback_summary(tmp_path):
    from qa_bot import eval_report
    from qa_bot.settings import Settings

    db = tmp_path / "fb.sqlite3"
    vote(FeedbackStore(db), "down", "wrong year")

    class Bot:
        settings = Settings(feedback_db=db)

    s = eval_report.feedback_summary(Bot())
    assert (s["n"], s["down"], s["with_comment"]) == (1, 1, 1)
    Bot.settings = Settings(feedback_db=tmp_path / "absent.sqlite3")
    assert eval_report.feedback_summary(Bot())["n"] == 0
    assert eval_report.feedback_summary(object()) is None


def test_a_thumb_on_any_answer_rates_that_answer(tmp_path):
    """The Chatbot's thumbs name a message index; each turn is two messages (question, answer bubble)."""
    from qa_bot.chat import DONE, ERROR, Conversation, Turn
    from qa_bot.ui import last_answered, record_feedback, voted_turn

    cited = {"n": 1, "source": "a.txt", "start": 0, "end": 4, "text": "2014", "cited": True}
    conv = Conversation([Turn(0, "first?", DONE, "2014 [1]", items=(cited,)), Turn(1, "broken?", ERROR, "down"),
                         Turn(2, "last?", DONE, "Hong Kong [1]")])
    assert voted_turn(conv, 1).question == "first?" and voted_turn(conv, (5,)).question == "last?"
    assert voted_turn(conv, 0) is None  # a question bubble
    assert voted_turn(conv, 3) is None and voted_turn(conv, 99) is None and voted_turn(conv, "x") is None
    assert last_answered(conv).question == "last?" and last_answered(Conversation()) is None

    class Bot:
        def model_info(self):
            return {"backend": "test"}

    store = FeedbackStore(tmp_path / "fb.sqlite3")
    note, comment = record_feedback(store, Bot(), "up", "good", voted_turn(conv, 1))
    assert "Thanks" in note and "first?" in note and comment == ""
    note, comment = record_feedback(store, Bot(), "down", "", voted_turn(conv, 0))
    assert "Ask a question first" in note
    with sqlite3.connect(tmp_path / "fb.sqlite3") as con:
        rows = con.execute("SELECT vote, question, answer, citations, comment FROM feedback").fetchall()
    assert len(rows) == 1 and rows[0][:3] == (1, "first?", "2014 [1]") and rows[0][4] == "good"
    assert json.loads(rows[0][3])[0]["text"] == "2014"

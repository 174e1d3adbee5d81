"""Each question asked of its own source document alone, with the article read whole and with the best sentences.

    .venv/bin/python benchmarks/single_articles.py OUT SET [SET ...]

SET names a file eval/SET.jsonl whose questions carry `source` (the seventh to tenth sets: fetch their corpora
first, eval/README.md); the corpus is eval/<first word of SET>_corpus. For every source, a one-document corpus is
built in a temporary folder and the source's questions are asked twice with the real bot (`qa-bot eval`'s
run_eval): `reader_whole` on, then off. Written per set and source: OUT/whole/..., OUT/ranked/... (each a
run_eval folder) and OUT/whole/<set>/<source>/whole.txt ("True <chars>" when the document fitted one reader
prompt and was read whole; a source that does not fit gets the best sentences both ways). Printed at the end:
right answers, refusals of unanswerable questions and false refusals, pooled over the sources that fitted.
The twenty-fourth round's figures (eval/README.md) come from this, ~40 minutes for the eight halves.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ask_alone(out: Path, name: str) -> None:
    from qa_bot.eval import run_eval
    from qa_bot.pipeline import QABot
    from qa_bot.settings import Settings

    corpus = ROOT / "eval" / f"{name.split('_')[0]}_corpus"
    questions = [json.loads(line) for line in (ROOT / "eval" / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    by_source: dict[str, list[dict]] = {}
    for q in questions:
        by_source.setdefault(q["source"], []).append(q)
    for source, group in sorted(by_source.items()):
        work = Path(tempfile.mkdtemp(prefix="single_"))
        try:
            one = work / "corpus"
            one.mkdir()
            for f in corpus.glob(Path(source).stem + "*"):  # the document and its sidecar metadata, if any
                shutil.copy(f, one / f.name)
            qfile = work / "questions.jsonl"
            qfile.write_text("".join(json.dumps(q) + "\n" for q in group))
            for mode in ("whole", "ranked"):
                bot = QABot(corpus_dir=one, settings=Settings.from_env(reader_whole=mode == "whole"))
                try:
                    run = out / mode / name / source
                    run_eval(qfile, bot=bot, corpus_dir=one, out_dir=run, progress=False)
                    if mode == "whole":
                        p = bot.prepare(group[0]["question"], (), None)
                        (run / "whole.txt").write_text(f"{p.whole} {sum(len(s.text) for s in p.sentences)}\n")
                finally:
                    bot.close()
            print(name, source, len(group), flush=True)
        finally:
            shutil.rmtree(work)


def pooled(out: Path, name: str) -> str:
    lines = []
    for mode in ("ranked", "whole"):
        rows = []
        for flag in sorted((out / "whole" / name).glob("*/whole.txt")):
            if flag.read_text().startswith("True"):
                run = out / mode / name / flag.parent.name
                rows += [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        answerable = [r for r in rows if r["answerable"]]
        unanswerable = [r for r in rows if not r["answerable"]]
        if not answerable:
            continue
        lines.append(f"{name:14} {mode:6} right {sum(r['correct'] for r in answerable)}/{len(answerable)}, refused "
                     f"{sum(r['abstained'] for r in unanswerable)}/{len(unanswerable)} unanswerable, false refusals "
                     f"{sum(r['abstained'] for r in answerable) / len(answerable):.2f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out = Path(argv[0])
    for name in argv[1:]:
        ask_alone(out, name)
    for name in argv[1:]:
        print(pooled(out, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Split the held-out question sets into a tuning half and a test half (stdlib only, deterministic).

    python3 eval/split_sets.py            # (re)writes eval/<set>_tune.jsonl and eval/<set>_test.jsonl
    python3 eval/split_sets.py --check    # exit 1 if the files on disk differ from a fresh split

For each set, the answerable and the unanswerable questions are shuffled separately with
random.Random(SEED) (a fresh generator per set, so one set's split never depends on another's),
and the first half of each stratum (rounded down) goes to tune, the rest to test. Output lines keep
the order of the full file and are copied byte for byte.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 9
HERE = Path(__file__).resolve().parent
SETS = {  # full file -> (tune file, test file)
    "paraphrase_qa.jsonl": ("paraphrase_tune.jsonl", "paraphrase_test.jsonl"),
    "news_qa.jsonl": ("news_tune.jsonl", "news_test.jsonl"),
    "licenses_qa.jsonl": ("licenses_tune.jsonl", "licenses_test.jsonl"),
    "readmes_qa.jsonl": ("readmes_tune.jsonl", "readmes_test.jsonl"),
    "compare_news.jsonl": ("compare_news_tune.jsonl", "compare_news_test.jsonl"),
    "compare_readmes.jsonl": ("compare_readmes_tune.jsonl", "compare_readmes_test.jsonl"),
    "compare_licenses.jsonl": ("compare_licenses_tune.jsonl", "compare_licenses_test.jsonl"),
    "fresh_qa.jsonl": ("fresh_tune.jsonl", "fresh_test.jsonl"),
    "sixth_qa.jsonl": ("sixth_tune.jsonl", "sixth_test.jsonl"),
    "seventh_qa.jsonl": ("seventh_tune.jsonl", "seventh_test.jsonl"),
    "eighth_qa.jsonl": ("eighth_tune.jsonl", "eighth_test.jsonl"),
    "ninth_qa.jsonl": ("ninth_tune.jsonl", "ninth_test.jsonl"),
    "tenth_qa.jsonl": ("tenth_tune.jsonl", "tenth_test.jsonl"),
    "no_licenses.jsonl": ("no_licenses_tune.jsonl", "no_licenses_test.jsonl"),
    "no_news.jsonl": ("no_news_tune.jsonl", "no_news_test.jsonl"),
    "no_readmes.jsonl": ("no_readmes_tune.jsonl", "no_readmes_test.jsonl"),
}


def split(lines: list[str], seed: int = SEED) -> tuple[list[str], list[str]]:
    """(tune, test) lines: stratified by `answerable`, seeded shuffle, half of each stratum to tune."""
    rng = random.Random(seed)
    tune_idx: set[int] = set()
    for answerable in (True, False):
        idx = [i for i, line in enumerate(lines) if json.loads(line)["answerable"] is answerable]
        rng.shuffle(idx)
        tune_idx.update(idx[: len(idx) // 2])
    tune = [line for i, line in enumerate(lines) if i in tune_idx]
    test = [line for i, line in enumerate(lines) if i not in tune_idx]
    return tune, test


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [line + "\n" for line in text.splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    status = 0
    for full, (tune_name, test_name) in SETS.items():
        lines = read_lines(HERE / full)
        tune, test = split(lines)
        for name, part in ((tune_name, tune), (test_name, test)):
            path = HERE / name
            content = "".join(part)
            if check:
                if not path.exists() or path.read_text(encoding="utf-8") != content:
                    print(f"{name}: differs from a fresh split of {full}")
                    status = 1
            else:
                path.write_text(content, encoding="utf-8", newline="\n")
            n_ans = sum(json.loads(line)["answerable"] for line in part)
            print(f"{name}: {len(part)} questions ({n_ans} answerable, {len(part) - n_ans} unanswerable)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

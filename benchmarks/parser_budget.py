"""The largest hostile input each parser finishes, and its time (issue 45: W1, G16, G2).

    .venv/bin/python benchmarks/parser_budget.py [--limit 60] [--start 10000] [--most 8388608] [--only w1,g16,g2]

Each attack is run at doubling sizes, every run in a child process killed at --limit seconds (a quadratic parser
would otherwise run for hours), until a run does not finish or the size passes --most (the corpus file limit).
Prints one JSON line per run and a summary: for each attack the largest input that finished and its time, with
the load average beside it (the machine is shared). Run it from a checkout: PYTHONPATH picks the code measured.

- w1: formats_markup.markdown_text('**a ' * n) (also '![' runs and '*a ' runs)
- g16: formats_markup.rst_text('**a ' * n) (also '`a' followed by n spaces)
- g2: extractor.extract of a PDF whose one FlateDecode content stream is a single string of n characters (42 KB on
  disk for 44 MB of text), under Settings().corpus_limits ("string") or upload_limits ("upload") where the code has
  them; "finished" means extract returned the text or refused it with a CorpusError.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from data.make_pdfs import pdf_file  # noqa: E402  (the tests' PDF writer)

ATTACKS = {
    "w1 strong": ("md", "**a "),
    "w1 image": ("md", "!["),
    "w1 emphasis": ("md", "*a "),
    "g16 strong": ("rst", "**a "),
    "g16 link spaces": ("rst", "`a", " "),
    "g2 pdf string": ("pdf", "corpus"),
    "g2 pdf upload": ("pdf", "upload"),
}


def bomb_pdf(n_chars: int) -> bytes:
    """A one-page PDF whose compressed content stream shows one string of n_chars characters."""
    ops = b"BT /F1 11 Tf 72 740 Td (" + b"A" * n_chars + b") Tj ET"
    stream = zlib.compress(ops, 9)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    return pdf_file(objs)


def run_one(name: str, n: int) -> None:
    """In the child: one attack at size n; prints a JSON line."""
    kind, *unit = ATTACKS[name]
    from qa_bot import extractor, formats_markup
    from qa_bot.errors import CorpusError

    if kind == "pdf":
        from qa_bot.settings import Settings

        # The limits a corpus document or a chat upload is read under (code without them reads it unbounded).
        limits = getattr(Settings(), f"{unit[0]}_limits", None)
        data = bomb_pdf(n)
        t = time.perf_counter()
        try:
            result = f"{len(extractor.extract('bomb.pdf', data, *([limits] if limits else [])).text):,} chars"
        except CorpusError as exc:
            result = f"refused: {exc}"
        size = len(data)
    else:
        text = unit[0] + unit[1] * n if len(unit) == 2 else unit[0] * (n // len(unit[0]))
        t = time.perf_counter()
        (formats_markup.markdown_text if kind == "md" else formats_markup.rst_text)(text)
        result, size = "done", len(text)
    took = time.perf_counter() - t
    try:  # a reader process (qa_bot.extractor), where the code has one: ended, so its peak memory is counted
        from qa_bot import extractor

        extractor._SHARED.close()
    except ImportError:
        pass
    print(json.dumps({"attack": name, "n": n, "bytes": size, "seconds": round(took, 3), "result": result[:160],
                      "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "child_max_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
                      "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=float, default=60.0, help="seconds a run may take before it is stopped")
    p.add_argument("--start", type=int, default=10_000)
    p.add_argument("--most", type=int, default=8 * 1024 * 1024, help="largest size tried (the corpus file limit)")
    p.add_argument("--pdf-most", type=int, default=64 * 1024 * 1024, help="largest PDF text tried")
    p.add_argument("--only", default="", help="comma-separated prefixes of attack names (w1, g16, g2)")
    p.add_argument("--child", nargs=2, metavar=("ATTACK", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return run_one(args.child[0], int(args.child[1]))
    summary = {}
    for name in ATTACKS:
        if args.only and not any(name.startswith(x) for x in args.only.split(",")):
            continue
        n, most = args.start, args.pdf_most if name.startswith("g2") else args.most
        while n <= most:
            load = os.getloadavg()[0]
            try:
                done = subprocess.run([sys.executable, __file__, "--child", name, str(n)], capture_output=True,
                                      text=True, timeout=args.limit)
            except subprocess.TimeoutExpired:
                print(json.dumps({"attack": name, "n": n, "seconds": f">{args.limit:g}", "result": "stopped",
                                  "load": round(load, 2)}), flush=True)
                break
            if done.returncode != 0:
                print(json.dumps({"attack": name, "n": n, "result": "crashed", "stderr": done.stderr[-300:]}))
                break
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            summary[name] = row
            n *= 2
    print("\nlargest input that finished (within --limit), its time and the load average:")
    for name, row in summary.items():
        print(f"  {name:16} {row['bytes']:>12,} bytes  {row['seconds']:>8.2f} s  load {row['load'][0]:.2f}  "
              f"{row['result'][:70]}")


if __name__ == "__main__":
    main()

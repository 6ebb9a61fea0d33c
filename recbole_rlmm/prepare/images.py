"""Finding item images in a folder and downloading them (with retries and a local cache)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from recbole_rlmm.data.io import atomic_write

from .atomic import PrepareError

#: File suffixes looked up for ``<item>.<suffix>``, in order of preference.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")
USER_AGENT = "recbole-rlmm-prepare/0.1 (+https://pypi.org/project/recbole-rlmm/)"


def find_images(folder: Path, items: Iterable[str]) -> tuple[dict[str, Path], list[str]]:
    """Map each item to ``folder/<item>.jpg|.jpeg|.png|.webp`` (suffix case ignored).

    Returns ``(found, missing)``; ``missing`` lists the items without any such file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PrepareError(
            f"--images {folder}: no such folder; give the folder holding <item>.jpg files."
        )
    rank = {suffix: i for i, suffix in enumerate(IMAGE_SUFFIXES)}
    best: dict[str, tuple[int, Path]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            suffix = suffix.lower()
            better = stem not in best or rank.get(suffix, 99) < best[stem][0]
            if suffix in rank and better and entry.is_file():
                best[stem] = (rank[suffix], Path(entry.path))
    found: dict[str, Path] = {}
    missing: list[str] = []
    for item in items:
        if item in best:
            found[item] = best[item][1]
        else:
            missing.append(item)
    return found, missing


def _suffix(url: str) -> str:
    suffix = os.path.splitext(urllib.parse.urlparse(url).path)[1].lower()
    return suffix if suffix in IMAGE_SUFFIXES + (".gif",) else ".jpg"


def _safe_name(item: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in item)


def download_one(
    url: str,
    target: Path,
    retries: int = 3,
    timeout: float = 20.0,
    backoff: float = 1.0,
) -> str | None:
    """Download ``url`` to ``target`` (written atomically); returns None or the failure reason.

    Transient failures (network errors, timeouts, HTTP 429 and 5xx) are retried up to
    ``retries`` more times, waiting ``backoff * 2**attempt`` seconds; other HTTP errors
    (404, 403, ...) fail at once. An empty answer counts as a failure.
    """
    last = "not tried"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read()
            if not data:
                last = "empty response"
                continue
            atomic_write(target, lambda f, data=data: f.write(data))
            return None
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                return last
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(exc).__name__}: {reason}"
    return f"{last} after {retries + 1} tries"


def download_images(
    urls: Mapping[str, str],
    cache_dir: Path,
    retries: int = 3,
    timeout: float = 20.0,
    backoff: float = 1.0,
    workers: int = 8,
) -> tuple[dict[str, Path], dict[str, str]]:
    """Download item images into ``cache_dir`` (``<item><suffix>``), reusing files already there.

    Returns ``(paths, failures)``: the local file of each item whose image is available
    and the reason for each item whose download failed. Items already cached are not
    requested again, so an interrupted download resumes.
    """
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    todo: dict[str, tuple[str, Path]] = {}
    for item, url in urls.items():
        target = cache_dir / f"{_safe_name(item)}{_suffix(url)}"
        if target.is_file() and target.stat().st_size > 0:
            paths[item] = target
        else:
            todo[item] = (url, target)
    failures: dict[str, str] = {}
    if todo:
        with (
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
            tqdm(total=len(todo), desc="downloading images", unit="img", leave=False) as bar,
        ):
            futures = {
                pool.submit(download_one, url, target, retries, timeout, backoff): item
                for item, (url, target) in todo.items()
            }
            for future in as_completed(futures):
                item = futures[future]
                error = future.result()
                if error is None:
                    paths[item] = todo[item][1]
                else:
                    failures[item] = f"download failed: {error}"
                bar.update(1)
    return paths, failures

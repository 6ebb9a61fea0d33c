"""Titles and pictures of items for the serving page, from the dataset's own files.

* **Titles**: the dataset's ``<dataset>.item`` atomic file (RecBole's item features), if there
  is one: the column named ``title`` (or ``movie_title``, ``name``; any case), else its first
  text column (``token_seq``, then ``token``) other than the item id. Read as text, as written.
* **Pictures**: an images folder with one file per item, named ``<item token>.jpg`` (``.jpeg``,
  ``.png``, ``.webp``, ``.gif``): ``--images DIR`` on the command line, else the key
  ``item_images`` of the run's configuration (a folder relative to the dataset folder, e.g. set
  in the dataset's own yaml), else that key in the dataset folder's yaml as it is today.

Both are optional: without them the page shows item tokens and no pictures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recbole_rlmm.errors import UserError

#: Picture files the page serves, by suffix.
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
#: Column names taken as the title, in this order (case-insensitive).
TITLE_COLUMNS = ("title", "movie_title", "name")


class CatalogError(UserError):
    """An images folder that was named but cannot be used."""


@dataclass
class ItemCatalog:
    """Item token -> title and picture file (either may be missing)."""

    titles: dict[str, str] = field(default_factory=dict)
    title_source: str | None = None
    images: dict[str, Path] = field(default_factory=dict)
    images_dir: Path | None = None

    def title(self, token: str) -> str | None:
        return self.titles.get(token)

    def image(self, token: str) -> Path | None:
        return self.images.get(token)

    def describe(self) -> dict[str, Any]:
        return {
            "titles": self.title_source,
            "titled_items": len(self.titles),
            "images": str(self.images_dir) if self.images_dir is not None else None,
            "pictured_items": len(self.images),
        }


def dataset_folder(config: Any) -> Path:
    """The dataset's folder: RecBole's final ``data_path`` (it joins the dataset name to it)."""
    return Path(str(config["data_path"]))


def _config_value(config: Any, key: str) -> Any:
    try:
        return config[key]
    except (KeyError, TypeError):
        return None


def read_titles(path: Path, item_field: str, separator: str = "\t") -> tuple[dict[str, str], str | None]:
    """``({item token: title}, "file:column")`` of an ``.item`` atomic file (see the module
    docstring); ``({}, None)`` when it has no text column. Lines with another number of columns
    than the header are skipped (RecBole's own check refuses such a file before training)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\r\n").split(separator)
        names = [h.partition(":")[0] for h in header]
        types = [h.partition(":")[2] for h in header]
        if item_field not in names:
            return {}, None
        id_col = names.index(item_field)
        text_cols = [j for j, t in enumerate(types) if t in ("token_seq", "token") and j != id_col]
        by_name = {names[j].lower(): j for j in text_cols}
        chosen = next((by_name[n] for n in TITLE_COLUMNS if n in by_name), None)
        if chosen is None:
            seq = [j for j in text_cols if types[j] == "token_seq"]
            chosen = (seq or text_cols or [None])[0]
        if chosen is None:
            return {}, None
        titles: dict[str, str] = {}
        for line in f:
            cells = line.rstrip("\r\n").split(separator)
            if len(cells) == len(header) and cells[chosen].strip():
                titles[cells[id_col]] = cells[chosen].strip()
    return titles, f"{path.name}:{names[chosen]}"


def images_folder(config: Any, images: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The images folder and where it was named (see the module docstring)."""
    if images is not None:
        return Path(images), "--images"
    folder = dataset_folder(config)
    value = _config_value(config, "item_images")
    where = "item_images in the checkpoint's configuration"
    if value is None:
        own = folder / f"{config['dataset']}.yaml"
        if own.is_file():
            import yaml

            try:
                value = (yaml.safe_load(own.read_text(encoding="utf-8")) or {}).get("item_images")
            except (yaml.YAMLError, AttributeError, OSError):
                value = None
            where = f"item_images in {own}"
    if value is None:
        return None, ""
    path = Path(str(value))
    return (path if path.is_absolute() else folder / path), where


def scan_images(folder: Path, tokens: set[str]) -> dict[str, Path]:
    """``{item token: picture file}`` of the files in ``folder`` named after an item."""
    found: dict[str, Path] = {}
    for entry in os.scandir(folder):
        stem, suffix = os.path.splitext(entry.name)
        if suffix.lower() in IMAGE_TYPES and stem in tokens and entry.is_file():
            found.setdefault(stem, Path(entry.path))
    return found


def check_folder(folder: Path, where: str) -> Path:
    """``folder`` if it is a folder, else a :class:`CatalogError` naming ``where`` it came from."""
    if not folder.is_dir():
        raise CatalogError(
            f"images folder {folder} (from {where}) "
            f"{'is a file' if folder.exists() else 'not found'}; give a folder of "
            "<item token>.jpg files, or leave it out to serve without pictures."
        )
    return folder


def load_catalog(config: Any, item_tokens: list[str], images: str | os.PathLike[str] | None = None) -> ItemCatalog:
    """Titles and pictures of the checkpoint's dataset (``config``: the run's configuration)."""
    catalog = ItemCatalog()
    item_file = dataset_folder(config) / f"{config['dataset']}.item"
    if item_file.is_file():
        separator = _config_value(config, "field_separator") or "\t"
        item_field = _config_value(config, "ITEM_ID_FIELD") or "item_id"
        catalog.titles, catalog.title_source = read_titles(item_file, str(item_field), str(separator))
    folder, where = images_folder(config, images)
    if folder is not None:
        catalog.images_dir = check_folder(folder, where)
        catalog.images = scan_images(folder, set(item_tokens))
    return catalog

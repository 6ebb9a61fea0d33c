"""Test data for ``recbole-rlmm serve``: a generated dataset with titles and pictures."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_catalog(folder: Path, name: str, pictured: int = 20) -> None:
    """Titles (a ``<name>.item`` file: ``Movie number <k> Alpha|Beta``) and pictures (PNGs of the
    first ``pictured`` items in ``pictures/``, named by ``item_images`` in the dataset yaml)."""
    from PIL import Image

    tokens = (folder / f"{name}.item_index").read_text().split()
    lines = ["item_id:token\tprice:float\ttitle:token_seq"]
    lines += [f"{t}\t{k}.5\tMovie number {k} {'Alpha' if k % 2 else 'Beta'}" for k, t in enumerate(tokens)]
    (folder / f"{name}.item").write_text("\n".join(lines) + "\n")
    images = folder / "pictures"
    images.mkdir()
    for k, t in enumerate(tokens[:pictured]):
        Image.new("RGB", (20, 30), (10 * k % 256, 100, 200)).save(images / f"{t}.png")
    config = yaml.safe_load((folder / f"{name}.yaml").read_text())
    config["item_images"] = "pictures"
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))

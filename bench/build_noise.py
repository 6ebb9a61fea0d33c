"""Build ``movielens-noise``: the embedded movielens-mm interactions with pure-noise features.

    python bench/build_noise.py [--seed 0] [--out /tmp/rlmm-data]

Same users, items, splits and feature shapes as ``dataset/movielens-mm`` (1280-d "image",
384-d "text", the same items missing an image), but every feature value is standard normal
noise drawn with ``--seed``: content carries no signal at all. Used by the do-no-harm table of
docs/RESULTS.md (a content model must match LightGCN here, within seed noise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mm_variant import write_variant

from recbole_rlmm.data.format import present_rows

NAME = "movielens-noise"


def build(out: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)

    def noise(_modality: str, real: np.ndarray) -> np.ndarray:
        x = rng.standard_normal(real.shape).astype(np.float32)
        x[~present_rows(real)] = 0.0  # the same items lack the modality
        return x

    folder = write_variant(
        out,
        NAME,
        noise,
        f"built by bench/build_noise.py --seed {seed}: movielens-mm interactions, noise features",
    )
    print(f"{folder}: movielens-mm interactions with N(0, 1) features (seed {seed})")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rlmm-data"))
    args = parser.parse_args()
    build(args.out, args.seed)


if __name__ == "__main__":
    main()

"""bench/reference_parity.py without training: both exports hold the same split and features,
and the fixes for today's stack change exactly what they name."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datagen import make_dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import reference_parity as parity  # noqa: E402


def test_export_writes_the_same_split_and_features_in_both_formats(tmp_path: Path) -> None:
    source = make_dataset(tmp_path / "src", missing={"image": [3]})
    e = parity.export(source, "parity-tiny", tmp_path / "work", duplicate=False)
    ours, ref = tmp_path / "work" / "data" / "parity-tiny", tmp_path / "work" / "ref-data" / "parity-tiny"
    inter = pd.read_csv(ref / "parity-tiny.inter", sep="\t")
    assert list(inter.columns) == ["userID", "itemID", "x_label"]
    items = (ours / "parity-tiny.item_index").read_text().split()
    users = sorted({line.split("\t")[0] for s in ("train", "valid", "test")
                    for line in (ours / f"parity-tiny.{s}.inter").read_text().splitlines()[1:]})
    for label, split in enumerate(("train", "valid", "test")):
        rows = [line.split("\t") for line in (ours / f"parity-tiny.{split}.inter").read_text().splitlines()[1:]]
        mine = sorted((users.index(u), items.index(i)) for u, i in rows)
        theirs = sorted(map(tuple, inter.loc[inter.x_label == label, ["userID", "itemID"]].to_numpy().tolist()))
        assert mine == theirs
    image = np.load(ours / "parity-tiny.image.npy")
    assert np.array_equal(image, np.load(ref / "image_feat.npy"))
    assert np.array_equal(np.load(ours / "parity-tiny.text.npy"), np.load(ref / "text_feat.npy"))
    assert e.filled == {"image": 1, "text": 0}
    k = items.index("i3")  # the missing row is the mean of the others
    assert np.allclose(image[k], np.delete(image, k, axis=0).mean(axis=0), atol=1e-6)


def test_fixes_change_only_what_they_name(tmp_path: Path) -> None:
    src = tmp_path / "ref"
    (src / "src" / "models").mkdir(parents=True)
    (src / "src" / "models" / "m.py").write_text(
        "x = np.float(1)\ny = np.float64(1)\nA._update(data_dict)\nimage_adj = image_adj.cuda()\n"
    )
    r = parity.prepare_reference("mmrec", src, tmp_path / "work")
    text = (r.src / "models" / "m.py").read_text()
    assert text == "x = float(1)\ny = np.float64(1)\nA._dict.update(data_dict)\nimage_adj = image_adj.to(self.device)\n"
    assert len(r.applied) == 3


def test_set_changes_both_sides_under_their_own_names_and_refuses_a_one_sided_key(capsys: pytest.CaptureFixture[str]) -> None:
    setting = parity.with_overrides("SMORE", {"cl_weight": 0.001, "dropout": 0, "learning_rate": 1e-4})
    assert setting.ours["cl_weight"] == setting.reference["cl_loss"] == 0.001
    assert setting.ours["dropout"] == setting.reference["dropout_rate"] == 0
    assert setting.learning_rate == 1e-4
    assert parity.SETTINGS["SMORE"].ours["cl_weight"] == 0.01  # the published setting is untouched
    assert parity.with_overrides("SMORE", {}) == parity.SETTINGS["SMORE"]  # no override: the same runs, reused
    assert parity.override_label({"cl_weight": 0.001}) == "+cl_weight=0.001"
    with pytest.raises(SystemExit, match="SMORE has no setting 'mask_weight_g'"):
        parity.with_overrides("SMORE", {"mask_weight_g": 0.1})
    with pytest.raises(SystemExit):
        parity.main(["--models", "SMORE", "--set", "cl_weight", "--table-only"])
    assert "--set: override 'cl_weight' is not of the form key=value" in capsys.readouterr().err

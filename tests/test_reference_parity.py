"""bench/reference_parity.py without training: both exports hold the same split and features,
and the fixes for today's stack change exactly what they name."""

from __future__ import annotations

import json
import subprocess
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


def test_sides_train_one_side_each_and_the_table_pairs_the_seeds_both_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--sides ours`` needs no reference checkout and trains only our runs; ``--sides
    reference`` then trains only the reference's, reuses ours, and tabulates the pairs."""
    source = make_dataset(tmp_path / "src", name="tiny")
    trained: list[tuple[str, str]] = []

    def fake(cmd, **_):  # the driver writes a result; git answers a commit
        if cmd[0] == "git":
            return subprocess.CompletedProcess(cmd, 0, "abc\n", "")
        out, config = Path(cmd[cmd.index("--out") + 1]), json.loads(Path(cmd[cmd.index("--config") + 1]).read_text())
        side = "ours" if "--ours" in cmd else "reference"
        trained.append((side, str(config["seed"])))
        score = 0.2 if side == "ours" else 0.1
        metrics = {"recall@20": score + config["seed"] / 1e4, "ndcg@20": score}
        out.write_text(json.dumps({"valid": metrics, "test": metrics, "train_cpu_seconds_per_epoch": 1.0,
                                   "best_epoch": 1, "epochs_run": 2}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(parity.subprocess, "run", fake)
    common = ["--models", "VBPR", "--datasets", "tiny", "--source", f"tiny={source}", "--epochs", "2",
              "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    parity.main([*common, "--sides", "ours", "--seeds", "1", "2"])  # no --mmrec needed
    assert trained == [("ours", "1"), ("ours", "2")]
    assert not (tmp_path / "work" / "reference").exists()
    assert not (tmp_path / "out" / "parity.md").exists()  # no seed has both sides yet
    checkout = tmp_path / "mmrec"
    (checkout / "src" / "models").mkdir(parents=True)
    (checkout / "src" / "models" / "vbpr.py").write_text("x = 1\n")
    parity.main([*common, "--mmrec", str(checkout), "--sides", "reference", "--seeds", "2", "3"])
    assert trained[2:] == [("reference", "2"), ("reference", "3")]  # ours of seed 2 is read, not retrained
    rows = json.loads((tmp_path / "out" / "parity.json").read_text())
    assert [[r["seed"] for r in rows[0][side]] for side in ("reference", "ours")] == [[2], [2]]
    (tmp_path / "out" / "parity.md").unlink()
    parity.main([*common, "--table-only", "--seeds", "1", "2", "3"])  # seeds 1 and 3 lack a side
    assert len(trained) == 4
    assert "| parity-tiny | VBPR | 1 |" in (tmp_path / "out" / "parity.md").read_text()
    assert [r["seed"] for r in json.loads((tmp_path / "out" / "parity.json").read_text())[0]["ours"]] == [2]


def test_stand_ins_aggregate_as_torch_geometric_defines_it(tmp_path: Path) -> None:
    """The stand-ins written next to a reference's copy: a message from ``edge_index[0]`` to
    ``edge_index[1]``, summed or averaged there, with ``x_j`` / ``edge_index`` / ``size`` passed by
    name (MENTOR's ``Base_gcn`` is re-typed below), and torch_scatter's ``scatter_add``; checked
    against dense products (bench/shim_parity.py checks them against torch_geometric itself)."""
    for rel, text in parity.SHIMS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    script = '''
import torch
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import remove_self_loops, add_self_loops, degree
from torch_scatter import scatter_add

class Base_gcn(MessagePassing):  # MENTOR's, as written there
    def __init__(self, aggr="add"):
        super().__init__(aggr=aggr)
        self.aggr = aggr
    def forward(self, x, edge_index, size=None):
        edge_index, _ = remove_self_loops(edge_index)
        return self.propagate(edge_index, size=(x.size(0), x.size(0)), x=x)
    def message(self, x_j, edge_index, size):
        if self.aggr == "add":
            row, col = edge_index
            deg = degree(row, size[0], dtype=x_j.dtype)
            deg_inv_sqrt = deg.pow(-0.5)
            return (deg_inv_sqrt[row] * deg_inv_sqrt[col]).view(-1, 1) * x_j
        return x_j

torch.manual_seed(0)
n = 7
edge_index = torch.tensor([[0, 1, 2, 3, 4, 4, 5, 6, 2], [4, 5, 6, 4, 0, 3, 1, 2, 2]])  # (2, 2) a self-loop
x = torch.randn(n, 3, dtype=torch.float64)
a = torch.zeros(n, n, dtype=torch.float64)  # a[target, source]
for s, t in edge_index.t().tolist():
    if s != t:
        a[t, s] += 1
deg = a.sum(0)  # messages sent per node: degree(row)
norm = deg.clamp(min=1).pow(-0.5)
expect_add = (norm.view(-1, 1) * a * norm.view(1, -1)) @ x
assert torch.allclose(Base_gcn("add")(x, edge_index), expect_add)
expect_mean = (a @ x) / a.sum(1, keepdim=True).clamp(min=1)
assert torch.allclose(Base_gcn("mean")(x, edge_index), expect_mean)
looped, _ = add_self_loops(edge_index, num_nodes=n)
assert looped.shape[1] == edge_index.shape[1] + n and looped[:, -n:].tolist() == [list(range(n))] * 2
w = torch.rand(edge_index.shape[1], dtype=torch.float64)
dense = torch.zeros(n, dtype=torch.float64)
for k, r in enumerate(edge_index[0].tolist()):
    dense[r] += w[k]
assert torch.allclose(scatter_add(w, edge_index[0], dim=0, dim_size=n), dense)
print("ok")
'''
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]

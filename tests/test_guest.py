"""A good guest (issue 19): plain RecBole behaves the same with and without ``import recbole_rlmm``.

Each comparison runs RecBole's own code in fresh processes (``tests/guest_probe.py``), once
without the package (``plain``) and once after ``import recbole_rlmm`` (``guest``), on the stack
the test runs on. ``noxfile.py`` runs this file on today's stack and on an older one (numpy
1.26, pandas 2.1, scipy 1.11, torch 2.2), where plain RecBole 1.2.1 runs.

Where plain RecBole itself breaks on the stack (today's: numpy 2 removed ``np.float_``, which
its ``Config`` reads), the plain run's error must be one the repairs exist for
(``recbole_rlmm/compat.py``, README), and the guest run is checked against what plain RecBole
does on a stack where it runs (RecBole's own ``run_recbole`` and ``load_data_and_model`` in the
same process, RecBole's checkpoint format, RecBole's bundled ml-100k).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("guest_probe.py")
sys.path.insert(0, str(PROBE.parent))
import guest_probe  # noqa: E402

pytestmark = [pytest.mark.guest, pytest.mark.slow]

#: How plain RecBole 1.2.1 fails on a current stack: the breakages the repairs exist for.
KNOWN_BREAKAGES = (
    "np.float_",  # numpy 2: Config.compatibility_settings
    "np.float",  # numpy >= 1.24: metrics of a model whose Config was unpickled
    "_update",  # scipy >= 1.12: dok_matrix._update
    "weights_only",  # torch >= 2.6: RecBole's own checkpoints
    "Length of values",  # pandas 3: token_seq remapping
    "pkg_resources",  # ray 2.6.3 (recbole.quick_start) on a current setuptools
    "np.bool8",  # ray 2.6.3 on numpy 2
)


def _stack() -> str:
    import numpy
    import pandas
    import scipy
    import torch

    return f"numpy {numpy.__version__}, pandas {pandas.__version__}, scipy {scipy.__version__}, torch {torch.__version__}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guest")
    guest_probe.write_dataset(str(root / "dataset"))
    guest_probe.write_ml100k(str(root / "dataset"))  # a user's own dataset/ml-100k
    return root


_CACHE: dict[tuple[str, ...], dict[str, Any]] = {}


def probe(workdir: Path, mode: str, *args: str) -> dict[str, Any]:
    """The probe's outcome in a fresh process (each distinct call runs once per session)."""
    key = (str(workdir), mode, *args)
    if key not in _CACHE:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("PYTHONPATH", None)
        out = subprocess.run(
            [sys.executable, str(PROBE), mode, *args],
            cwd=workdir, capture_output=True, text=True, timeout=900, env=env,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        _CACHE[key] = json.loads(out.stdout.strip().splitlines()[-1])
        assert _CACHE[key]["imported_recbole_rlmm"] == (mode == "guest")
    return _CACHE[key]


def _ok(outcome: dict[str, Any]) -> bool:
    return "error" not in outcome


def _known(outcome: dict[str, Any]) -> None:
    """A plain run's failure must be a breakage the repairs exist for."""
    assert any(k in outcome["error"] for k in KNOWN_BREAKAGES), (
        f"plain RecBole failed in an unexpected way on {_stack()}: {outcome}"
    )


@pytest.mark.parametrize("model", ["LightGCN", "BPR"])
def test_recboles_models_give_identical_metrics(workdir: Path, model: str) -> None:
    """RecBole's run_recbole on a dataset with token_seq and float item fields."""
    guest = probe(workdir, "guest", "train", model)
    assert _ok(guest), guest
    plain = probe(workdir, "plain", "train", model)
    if _ok(plain):
        assert guest["result"] == plain["result"], _stack()
    else:
        _known(plain)
    assert 0.0 < guest["result"]["test_result"]["recall@10"] <= 1.0


@pytest.mark.parametrize("model", ["LightGCN", "BPR"])
def test_a_checkpoint_written_after_the_import_is_recboles(workdir: Path, model: str) -> None:
    """RecBole's trainer writes RecBole's own (pickled) checkpoint, with nothing of ours in it
    (so RecBole reads it after `pip uninstall recbole-rlmm`: noxfile.py checks that), and
    RecBole's load_data_and_model + full_sort_topk give the same lists as for a plain one."""
    written = probe(workdir, "guest", "train", model)
    assert written["contents"] == {"recbole_config": True, "mentions_recbole_rlmm": False}
    loaded_guest = probe(workdir, "guest", "load", written["checkpoint"])
    assert _ok(loaded_guest), loaded_guest
    assert loaded_guest["config_class"] == "recbole.config.configurator.Config"
    loaded_plain = probe(workdir, "plain", "load", written["checkpoint"])
    if _ok(loaded_plain):
        assert loaded_plain["topk"] == loaded_guest["topk"] and loaded_plain["scores"] == loaded_guest["scores"]
    else:
        _known(loaded_plain)
    plain = probe(workdir, "plain", "train", model)
    if _ok(plain):  # a checkpoint plain RecBole wrote, loaded by plain RecBole
        reference = probe(workdir, "plain", "load", plain["checkpoint"])
        assert reference["topk"] == loaded_guest["topk"]
    record = os.environ.get("GUEST_RECORD")  # for the check after `pip uninstall` (noxfile.py)
    if record:
        Path(record).mkdir(parents=True, exist_ok=True)
        (Path(record) / f"{model}.json").write_text(
            json.dumps({"workdir": str(workdir), "checkpoint": written["checkpoint"], "topk": loaded_guest["topk"]})
        )


@pytest.mark.parametrize("model", ["LightGCN", "BPR"])
def test_evaluate_reads_a_plain_recbole_checkpoint(workdir: Path, model: str) -> None:
    """trainer.evaluate(test_data, model_file=<RecBole checkpoint>) in a user's own script."""
    plain_run = probe(workdir, "plain", "train", model)
    source = plain_run if _ok(plain_run) else probe(workdir, "guest", "train", model)
    guest = probe(workdir, "guest", "evaluate", model, source["checkpoint"])
    assert _ok(guest), guest
    plain = probe(workdir, "plain", "evaluate", model, source["checkpoint"])
    if _ok(plain):
        assert guest == {**plain, "imported_recbole_rlmm": True}
    else:
        _known(plain)
    # RecBole's run_recbole evaluated the same file at the end of training
    assert guest["test_result"] == source["result"]["test_result"]


def test_rlmm_run_recbole_equals_recboles(workdir: Path) -> None:
    """recbole_rlmm.run_recbole is RecBole's run_recbole: same arguments, same result."""
    ours = probe(workdir, "guest", "rlmm_run_recbole", "BPR")
    assert _ok(ours), ours
    recboles = probe(workdir, "guest", "train", "BPR")  # recbole.quick_start.run_recbole
    assert ours["result"] == recboles["result"]
    plain = probe(workdir, "plain", "train", "BPR")
    if _ok(plain):
        assert ours["result"] == plain["result"]
    else:
        _known(plain)


def test_a_users_ml100k_folder_resolves_as_in_plain_recbole(workdir: Path) -> None:
    """RecBole 1.2.1 reads its bundled ml-100k (100,000 interactions) whatever data_path
    holds; after the import it still does (our runner reads the user's folder: below)."""
    guest = probe(workdir, "guest", "ml100k")
    assert _ok(guest), guest
    plain = probe(workdir, "plain", "ml100k")
    if _ok(plain):
        assert guest == {**plain, "imported_recbole_rlmm": True}
    else:
        _known(plain)
    assert guest["data_path"].endswith(os.path.join("dataset_example", "ml-100k"))
    assert guest["n_inter"] == 100_000


def test_our_runner_reads_a_users_ml100k_folder(tmp_path: Path) -> None:
    from recbole_rlmm.config import create_config

    guest_probe.write_ml100k(str(tmp_path / "dataset"))
    config = create_config("BPR", "ml-100k", config_dict={"data_path": str(tmp_path / "dataset")})
    assert Path(config["data_path"]) == tmp_path / "dataset" / "ml-100k"


def test_the_import_replaces_only_repaired_recbole_functions() -> None:
    """What RecBole does beyond the repairs stays RecBole's own code after the import:
    checkpoints, resume, caches, dataset paths, the device."""
    import recbole_rlmm

    recbole_rlmm.compat.apply()
    from recbole.config import configurator
    from recbole.data import utils as data_utils
    from recbole.trainer import trainer

    untouched = [
        data_utils.create_dataset, data_utils.load_split_dataloaders, data_utils.data_preparation,
        trainer.Trainer._save_checkpoint, trainer.Trainer.resume_checkpoint, trainer.Trainer.evaluate,
        trainer.Trainer._train_epoch, trainer.Trainer.fit, trainer.PretrainTrainer.save_pretrained_model,
        configurator.Config._set_default_parameters,
    ]
    assert [f.__qualname__ for f in untouched if not f.__module__.startswith("recbole.")] == []
    import recbole.data

    assert recbole.data.create_dataset is data_utils.create_dataset


def test_repairs_listed_in_the_readme_are_the_applied_ones() -> None:
    """The README's table of repairs names every repair the import applies, and nothing else."""
    from recbole_rlmm import compat

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## RecBole 1.2.1 on a current stack", 1)[1].split("\n## ", 1)[0]
    names = {p.__name__.lstrip("_") for patches in compat.PATCHES.values() for p in patches}
    assert names == set(compat.REPAIRS)
    for name in names:
        assert f"`{name}`" in section, name


def test_our_loaders_read_recboles_checkpoints_only_when_trusted(tiny: Path) -> None:
    """A checkpoint RecBole's own trainer wrote (after the import: RecBole's pickled format) is
    refused by our loaders unless trusted, and read when trusted."""
    from conftest import build_model
    from recbole.utils import get_trainer

    from recbole_rlmm import Recommender
    from recbole_rlmm.checkpoint import CheckpointError

    net, config, train, valid, _ = build_model("BPR", tiny)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)  # RecBole's own
    trainer.fit(train, valid, saved=True)
    path = trainer.saved_model_file
    with pytest.raises(CheckpointError, match="pickled checkpoint"):
        Recommender.from_checkpoint(path)
    recs = Recommender.from_checkpoint(path, trust_checkpoint=True).recommend(["u1", "u2"], k=5)
    assert list(recs["user"].unique()) == ["u1", "u2"] and len(recs) == 10


def test_needed_lists_what_this_stack_needs() -> None:
    import numpy as np

    from recbole_rlmm import compat

    needed = compat.needed()
    assert set(needed) <= set(compat.REPAIRS)
    assert ("numpy_aliases" in needed) == (int(np.__version__.split(".")[0]) >= 2)
    assert ("metric_values" in needed) == (int(np.__version__.split(".")[0]) >= 2)

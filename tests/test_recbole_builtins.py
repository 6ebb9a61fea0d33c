"""Every RecBole general recommender trains through our runner on a dataset with every field type.

The model list is read from RecBole itself (every recommender class of every module of
``recbole.model.general_recommender``), so a model RecBole adds is tested without editing this
file. The dataset (``datagen.make_field_type_dataset``) has ``.inter``, ``.user`` and ``.item``
files, each with a ``token``, ``token_seq``, ``float`` and ``float_seq`` column, empty and
one-element sequences, all loaded (``load_col: ~``).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datagen import FIELD_TYPE_KNOWN, make_field_type_dataset

from recbole_rlmm.cli import main
from recbole_rlmm.registry import EXTRAS, MissingExtraError, check_extras, get_model
from recbole_rlmm.runner import run_recbole_rlmm

pytestmark = pytest.mark.slow  # many trainings or processes: `-m "not slow"` skips them

REPO = Path(__file__).resolve().parent.parent


def general_recommenders() -> list[str]:
    """Every recommender class defined in a module of ``recbole.model.general_recommender``."""
    import recbole.model.general_recommender as package
    from recbole.model.abstract_recommender import GeneralRecommender

    names = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, GeneralRecommender) and obj.__module__ == module.__name__:
                names.add(obj.__name__)
    return sorted(names)


MODELS = general_recommenders()

#: Settings some models need on a 40-user, 30-item dataset, or to train exactly one epoch.
MODEL_CONFIG: dict[str, dict[str, Any]] = {
    # k-means over 40 users needs fewer prototypes than RecBole's default 1000
    "NCL": {"num_clusters": 8},
    # RaCT's default stage (actor_pretrain) trains `pretrain_epochs`, not `epochs`, and saves the
    # model every `save_step` epochs; evaluation loads that file
    "RaCT": {"pretrain_epochs": 1, "save_step": 1},
}


@pytest.fixture(scope="module")
def ftype_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builtins") / "data"
    make_field_type_dataset(root)
    return root


def fast_config(root: Path, tmp: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data_path": str(root),
        "epochs": 1,
        # DGCF samples `n_users / n_batches` items per batch: at least two batches on 30 items
        "train_batch_size": 128,
        "state": "ERROR",
        "show_progress": False,
        "log_dir": None,
        "tensorboard_dir": None,
        "checkpoint_dir": str(tmp / "saved"),
        "seed": 2020,
        "reproducibility": True,
        **extra,
    }


def test_model_list_is_recbole_general_recommenders() -> None:
    import recbole.model.general_recommender as package

    exported = {name for name, obj in vars(package).items() if isinstance(obj, type)}
    assert set(MODELS) == exported
    assert len(MODELS) >= 30 and {"BPR", "LightGCN", "NCL", "Pop", "EASE", "DiffRec"} <= set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_builtin_trains_one_epoch(model: str, ftype_root: Path, tmp_path: Path) -> None:
    config = fast_config(ftype_root, tmp_path, **MODEL_CONFIG.get(model, {}))
    result = run_recbole_rlmm(model, "ftype", config_dict=config)
    assert result["model"] == model
    assert result["epochs_run"] == 1
    metrics = result["test_result"]
    assert {"recall@10", "ndcg@10"} <= set(metrics)
    for name, value in metrics.items():
        assert isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0, (name, value)


def _tokens(ds: Any, field: str, ids: Any) -> list[str]:
    return [str(ds.field2id_token[field][i]) for i in ids.tolist() if i != 0]


def test_every_field_type_arrives(ftype_root: Path) -> None:
    """The runner's loader (``create_dataset`` + ``build``) holds each field with its values."""
    from recbole.data import create_dataset
    from recbole.utils import FeatureType

    from recbole_rlmm.config import create_config

    config = create_config("BPR", "ftype", config_dict={"data_path": str(ftype_root), "state": "ERROR"})
    ds = create_dataset(config)
    ds.build()
    types = {
        "user_id": FeatureType.TOKEN, "item_id": FeatureType.TOKEN, "rating": FeatureType.FLOAT,
        "timestamp": FeatureType.FLOAT, "tags": FeatureType.TOKEN_SEQ, "context": FeatureType.FLOAT_SEQ,
        "brand": FeatureType.TOKEN, "price": FeatureType.FLOAT, "categories": FeatureType.TOKEN_SEQ,
        "embedding": FeatureType.FLOAT_SEQ, "gender": FeatureType.TOKEN, "age": FeatureType.FLOAT,
        "interests": FeatureType.TOKEN_SEQ, "profile": FeatureType.FLOAT_SEQ,
    }
    assert {f: ds.field2type[f] for f in types} == types

    k = FIELD_TYPE_KNOWN["item"]
    items = ds.get_item_feature()
    row = items[int(ds.token2id("item_id", k["item_id"]))]
    assert _tokens(ds, "brand", row["brand"].reshape(1)) == [k["brand"]]
    assert float(row["price"]) == pytest.approx(k["price"])
    assert _tokens(ds, "categories", row["categories"]) == k["categories"]  # a one-token sequence
    emb = row["embedding"].numpy()
    np.testing.assert_allclose(emb[: len(k["embedding"])], k["embedding"], rtol=1e-6)
    assert not emb[len(k["embedding"]) :].any()
    empty = items[int(ds.token2id("item_id", FIELD_TYPE_KNOWN["empty_item"]))]
    assert not empty["categories"].any() and not empty["embedding"].any()

    k = FIELD_TYPE_KNOWN["user"]
    user = ds.get_user_feature()[int(ds.token2id("user_id", k["user_id"]))]
    assert _tokens(ds, "gender", user["gender"].reshape(1)) == [k["gender"]]
    assert float(user["age"]) == pytest.approx(k["age"])
    assert _tokens(ds, "interests", user["interests"]) == k["interests"]
    assert user["profile"].tolist()[: len(k["profile"])] == pytest.approx(k["profile"])

    k = FIELD_TYPE_KNOWN["inter"]
    inter = ds.inter_feat
    uid, iid = ds.token2id("user_id", k["user_id"]), ds.token2id("item_id", k["item_id"])
    (pos,) = ((inter["user_id"] == uid) & (inter["item_id"] == iid)).nonzero(as_tuple=True)
    assert len(pos) == 1
    assert _tokens(ds, "tags", inter["tags"][pos[0]]) == k["tags"]
    assert inter["context"][pos[0]].tolist()[: len(k["context"])] == pytest.approx(k["context"])


# ------------------------------------------------------------------------- optional packages
def test_extras_name_real_models_and_pyproject_extras() -> None:
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for model, reqs in EXTRAS.items():
        assert model in MODELS
        for req in reqs:
            assert req.extra in extras, req
    assert any(d.startswith("faiss-cpu") for d in extras["faiss"])
    assert any(d.startswith("faiss-cpu") for d in extras["test"])


def test_missing_faiss_stops_ncl_before_training(
    ftype_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails
    message = 'NCL needs faiss (pip install "recbole-rlmm[faiss]")'
    with pytest.raises(MissingExtraError) as info:
        get_model("NCL")
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    with pytest.raises(MissingExtraError, match=r"NCL needs faiss"):
        run_recbole_rlmm("NCL", "ftype", config_dict=fast_config(ftype_root, tmp_path, num_clusters=8))
    assert not (tmp_path / "saved").exists()  # stopped before training
    get_model("BPR")  # other models are unaffected


def test_missing_extra_is_one_line_on_the_command_line(
    ftype_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:

    monkeypatch.setitem(sys.modules, "faiss", None)
    code = main(["run", "-m", "NCL", "-d", "ftype", f"--data_path={ftype_root}", "--state=ERROR"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == 'recbole-rlmm: error: NCL needs faiss (pip install "recbole-rlmm[faiss]")\n'


def test_extra_that_depends_on_the_config(monkeypatch: pytest.MonkeyPatch, ftype_root: Path) -> None:
    """NNCF imports python-louvain only for ``neigh_info_method: louvain``."""
    from recbole_rlmm.config import create_config

    monkeypatch.setitem(sys.modules, "community", None)
    get_model("NNCF")
    check_extras("NNCF", {"neigh_info_method": "random"})
    create_config("NNCF", "ftype", config_dict={"data_path": str(ftype_root)})
    message = 'NNCF with neigh_info_method=louvain needs louvain (pip install "recbole-rlmm[louvain]")'
    with pytest.raises(MissingExtraError) as info:
        create_config("NNCF", "ftype", config_dict={"data_path": str(ftype_root), "neigh_info_method": "louvain"})
    assert str(info.value) == message


def test_nncf_louvain_trains(ftype_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("community", reason="python-louvain (the louvain extra) is not installed")
    config = fast_config(ftype_root, tmp_path, neigh_info_method="louvain")
    assert run_recbole_rlmm("NNCF", "ftype", config_dict=config)["epochs_run"] == 1


def test_pretrain_stage_that_saves_nothing_is_refused_before_training(ftype_root: Path, tmp_path: Path) -> None:
    config = fast_config(ftype_root, tmp_path, pretrain_epochs=1, save_step=10)
    with pytest.raises(ValueError, match=r"RaCT stage actor_pretrain saves its model every save_step=10"):
        run_recbole_rlmm("RaCT", "ftype", config_dict=config)
    assert run_recbole_rlmm("RaCT", "ftype", config_dict=config, saved=False)["epochs_run"] == 1

"""The dataset file contract end to end: ``prepare`` writes a folder, the feature loader reads it
aligned to RecBole's item ids, and one training step of every multimodal model runs on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from prepare_helpers import HashTextEncoder, PixelStatsImageEncoder, write_table_inputs
from reference import first_batch, total_loss

from recbole_rlmm.data import format as fmt
from recbole_rlmm.prepare import prepare_table


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roundtrip")
    paths = write_table_inputs(root / "in", n_users=30, n_items=12, per_user=6)
    (paths["images"] / "i2.webp").unlink()  # i2 lacks an image
    return prepare_table(
        paths["inter"],
        paths["items"],
        paths["images"],
        name="toy",
        out=root / "out",
        text_cols=["title", "genres"],
        text_encoder=HashTextEncoder(),
        image_encoder=PixelStatsImageEncoder(),
        echo=False,
    )


def _build(folder: Path, model: str) -> tuple:
    from recbole.data import create_dataset, data_preparation

    from recbole_rlmm.config import create_config
    from recbole_rlmm.registry import get_model

    config = create_config(
        model,
        "toy",
        [str(folder / fmt.config_file("toy"))],
        {"embedding_size": 8, "epochs": 1, "state": "ERROR", "train_batch_size": 64},
    )
    dataset = create_dataset(config)
    train, *_ = data_preparation(config, dataset)
    return get_model(model)(config, train._dataset), train


def test_loader_reads_prepared_rows_aligned_to_recbole_ids(prepared: Path) -> None:
    net, train = _build(prepared, "VBPR")  # feature_norm: none, so rows arrive unchanged
    ds = train._dataset
    tokens = (prepared / fmt.item_index_file("toy")).read_text().split()
    for modality in ("image", "text"):
        written = np.load(prepared / fmt.feature_file("toy", modality), allow_pickle=False)
        present = fmt.present_rows(written)
        encoder = net.encoders[modality]
        for row, token in enumerate(tokens):
            if token not in ds.field2token_id[ds.iid_field]:
                continue  # an item without interactions is not in RecBole's vocabulary
            iid = ds.token2id(ds.iid_field, token)
            assert bool(encoder.mask[iid]) == bool(present[row]), (modality, token)
            np.testing.assert_array_equal(encoder.features[iid].numpy(), written[row])
    i2 = ds.token2id(ds.iid_field, "i2")
    assert not net.encoders["image"].mask[i2] and net.encoders["text"].mask[i2]


@pytest.mark.parametrize("model", ["RLMultimodalRec", "VBPR", "MMGCN", "LATTICE", "FREEDOM"])
def test_one_training_step_on_a_prepared_dataset(prepared: Path, model: str) -> None:
    net, train = _build(prepared, model)
    net.train()
    loss = total_loss(net.calculate_loss(first_batch(net, train)))
    loss.backward()
    assert torch.isfinite(loss).all()

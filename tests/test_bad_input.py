"""Bad input and faults, tried as a user would: every case runs the real command line on a
tiny generated dataset and must end in ONE line ``recbole-rlmm: error: ...`` naming the
offending file, field or key (exit 2) before any training epoch, or, where the input is
legitimate but noteworthy, train and say so (exit 0 with a warning). docs/CHECKS.md lists
the checks."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import FakeRunner
from datagen import make_dataset

from recbole_rlmm.cli import main
from recbole_rlmm.data.checks import clear_cache

REPO = Path(__file__).resolve().parent.parent
#: fast settings; --state=WARNING shows the warnings the exit-0 cases must print
FAST = ["--epochs=1", "--embedding_size=8", "--train_batch_size=256", "--state=WARNING",
        "--tensorboard_dir=~", "--item_graph_k=0"]
TOPK = ["--topk=[5,10,20]"]


@dataclass
class Case:
    """``edit(folder, tmp)`` changes the generated dataset ``tmp/data/tiny`` and returns extra
    arguments; ``expect`` are fragments of the error line (or of stderr for exit 0)."""

    args: list[str] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    edit: Callable[[Path, Path], list[str] | None] | None = None
    code: int = 2
    model: str = "RLMultimodalRec"
    topk: bool = True
    stdout: list[str] = field(default_factory=list)  # exit 0: fragments of the summary
    data: dict[str, Any] = field(default_factory=dict)  # make_dataset arguments
    patch: Callable[[pytest.MonkeyPatch], None] | None = None


# --------------------------------------------------------------------------- edits


def _write(name: str, value: Any) -> Callable[[Path, Path], None]:
    def edit(folder: Path, _tmp: Path) -> None:
        path = folder / name
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, str):
            path.write_text(value)
        else:
            np.save(path, value)
    return edit


def _lines(name: str, change: Callable[[list[str]], list[str]]) -> Callable[[Path, Path], None]:
    def edit(folder: Path, _tmp: Path) -> None:
        path = folder / name
        path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")
    return edit


def _lines_bytes(name: str, extra: bytes) -> Callable[[Path, Path], None]:
    def edit(folder: Path, _tmp: Path) -> None:
        (folder / name).write_bytes((folder / name).read_bytes() + extra)
    return edit


def _header(name: str, header: str) -> Callable[[Path, Path], None]:
    return _lines(name, lambda lines: [header, *lines[1:]])


def _config_file(text: str, name: str = "user.yaml") -> Callable[[Path, Path], list[str]]:
    def edit(_folder: Path, tmp: Path) -> list[str]:
        (tmp / name).write_text(text)
        return ["--config_files", str(tmp / name)]
    return edit


def _features(change: Callable[[np.ndarray], np.ndarray], modalities: tuple[str, ...] = ("image",)) -> Callable[[Path, Path], None]:
    def edit(folder: Path, _tmp: Path) -> None:
        for m in modalities:
            path = folder / f"tiny.{m}.npy"
            np.save(path, change(np.load(path)))
    return edit


def _set(row: int, value: float, dtype: type = np.float64) -> Callable[[np.ndarray], np.ndarray]:
    def change(x: np.ndarray) -> np.ndarray:
        x = x.astype(dtype)
        x[row, 0] = value
        return x
    return change


def _timestamps(folder: Path, _tmp: Path) -> list[str]:
    for split in ("train", "valid", "test"):
        path = folder / f"tiny.{split}.inter"
        lines = path.read_text().splitlines()
        rows = [f"{line}\t{1_600_000_000 + i}" for i, line in enumerate(lines[1:])]
        if split == "train":
            rows[3] = rows[3].rsplit("\t", 1)[0] + "\tyesterday"
        path.write_text("\n".join([lines[0] + "\ttimestamp:float", *rows]) + "\n")
    return ["--load_col={'inter':['user_id','item_id','timestamp']}"]


def _shift_items(folder: Path, _tmp: Path) -> None:
    """Item tokens 1..40 while feature row r is meant for item r (no index)."""
    for split in ("train", "valid", "test"):
        path = folder / f"tiny.{split}.inter"
        lines = path.read_text().splitlines()
        rows = [f"{u}\t{int(i) + 1}" for u, i in (line.split("\t") for line in lines[1:])]
        path.write_text("\n".join([lines[0], *rows]) + "\n")


def _unknown_tokens(count: int) -> Callable[[Path, Path], None]:
    return _lines("tiny.item_index", lambda lines: [f"x{k}" if k < count else t for k, t in enumerate(lines)])


def _index_lines(n: int, dup: bool = False) -> str:
    tokens = [f"i{k}" for k in range(n)]
    if dup:
        tokens[5] = "i2"
    return "\n".join(tokens) + "\n"


def _npz(folder: Path, _tmp: Path) -> None:
    with zipfile.ZipFile(folder / "tiny.image.npy", "w") as z:
        z.writestr("arr_0.npy", b"\x93NUMPY")


def _truncated(folder: Path, _tmp: Path) -> None:
    path = folder / "tiny.image.npy"
    path.write_bytes(path.read_bytes()[:-100])


def _unwritable(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)


def _folder_as(name: str) -> Callable[[Path, Path], None]:
    def edit(folder: Path, _tmp: Path) -> None:
        path = folder / name
        path.unlink()
        path.mkdir()
    return edit


def _a_file(name: str) -> Callable[[Path, Path], None]:
    def edit(_folder: Path, tmp: Path) -> None:
        (tmp / name).write_text("not a folder\n")
    return edit


_nan = np.ones((40, 12), dtype=np.float32)
_nan[7, 3] = np.nan
_inf = np.ones((40, 12), dtype=np.float32)
_inf[9, 0] = np.inf


# --------------------------------------------------------------------------- the matrix

CASES: dict[str, Case] = {
    # ---- configuration keys: type and range from the key table (checks/keys.py)
    "fusion-invalid": Case(["--fusion=bogus"], ["fusion='bogus'", "gate, sum, concat, image, text, none"]),
    "gate_type-invalid": Case(["--gate_type=matrix"], ["gate_type='matrix'", "vector, scalar"]),
    "feature_norm-invalid": Case(["--feature_norm=zscore"], ["feature_norm='zscore'", "none, l2, standard"]),
    "fusion_stage-invalid": Case(["--fusion_stage=middle"], ["fusion_stage='middle'", "early, late"]),
    "n_layers-negative": Case(["--n_layers=-1"], ["n_layers=-1", ">= 0"]),
    "n_layers-not-integer": Case(["--n_layers=1.5"], ["n_layers=1.5", "not an integer"]),
    "edge_dropout-one": Case(["--edge_dropout=1.0"], ["edge_dropout=1.0", "[0, 1)"]),
    "embedding_size-zero": Case(["--embedding_size=0"], ["embedding_size=0", ">= 1"]),
    "learning_rate-text": Case(["--learning_rate=abc"], ["learning_rate='abc'", "not a number"]),
    "learning_rate-zero": Case(["--learning_rate=0"], ["learning_rate=0", "> 0"]),
    "epochs-zero": Case(["--epochs=0"], ["epochs=0", ">= 1"]),
    "content_scale-negative": Case(["--content_scale=-5"], ["content_scale=-5", ">= 0"]),
    "item_graph_k-float": Case(["--item_graph_k=2.5"], ["item_graph_k=2.5", "integer"]),
    "align_temperature-zero": Case(["--align_temperature=0"], ["align_temperature=0", "> 0"]),
    "train_batch_size-zero": Case(["--train_batch_size=0"], ["train_batch_size=0", ">= 1"]),
    "eval_batch_size-zero": Case(["--eval_batch_size=0"], ["eval_batch_size=0", ">= 1"]),
    "stopping_step-zero": Case(["--stopping_step=0"], ["stopping_step=0", ">= 1"]),
    "eval_step-zero": Case(["--eval_step=0"], ["eval_step=0", ">= 1"]),
    "seed-text": Case(["--seed=abc"], ["seed='abc'", "integer"]),
    "learner-unknown": Case(["--learner=adamx"], ["learner='adamx'", "adam, adamw, sgd"]),
    "metrics-misspelled": Case(["--metrics=['Recal','NDCG']"], ["metrics=", "'Recal'", "did you mean Recall"]),
    "valid_metric-cutoff": Case(["--valid_metric=Recall@30"], ["valid_metric='Recall@30'", "not in topk [5, 10, 20]"]),
    "valid_metric-not-computed": Case(["--valid_metric=MRR@10"], ["valid_metric='MRR@10'", "not in metrics"]),
    "eval_args-mode": Case(["--eval_args={'mode':'fulll'}"], ["eval_args=", "mode 'fulll'"]),
    "topk-beyond-items": Case(["--topk=[10,20,5000]"], ["topk=[10, 20, 5000]", "(40)", "[10, 20]"], topk=False),
    # the command: valid_metric (Recall@20) is no longer among the cut-offs
    "topk-without-valid-cutoff": Case(["--topk=[10,5000]"], ["valid_metric='Recall@20'", "not in topk [10, 5000]"], topk=False),
    "topk-zero": Case(["--topk=[0,10]"], ["topk=[0, 10]", ">= 1"], topk=False),
    # a fresh 30-item dataset with the default cut-offs [10, 20, 50]
    "topk-default-30-items": Case([], ["topk=[10, 20, 50]", "(30)", "[10, 20]"], topk=False, data={"n_items": 30}),
    "MMGCN-aggr": Case(["--aggr=max"], ["aggr='max'", "mean, add"], model="MMGCN"),
    "LATTICE-lambda_coeff": Case(["--lambda_coeff=2"], ["lambda_coeff=2", "[0, 1]"], model="LATTICE"),
    "FREEDOM-dropout": Case(["--dropout=1.0"], ["dropout=1.0", "[0, 1)"], model="FREEDOM"),
    "VBPR-reg_weight": Case(["--reg_weight=-1"], ["reg_weight=-1", ">= 0"], model="VBPR"),
    "BPR-learning_rate": Case(["--learning_rate=-1"], ["learning_rate=-1", "> 0"], model="BPR"),
    # ---- keys nobody reads: a warning, and the run goes on
    "misspelled-key-command-line": Case(["--fusoin=sum"], ["'fusoin'", "command line", "Did you mean 'fusion'?"], code=0),
    "misspelled-key-yaml": Case(
        [], ["'lerning_rate'", "user.yaml", "Did you mean 'learning_rate'?"], code=0,
        edit=_config_file("lerning_rate: 0.01\n"),
    ),
    "removed-key": Case(["--modality_dropout=1.5"], ["'modality_dropout'", "removed"], code=0),
    "other-models-key": Case(["--knn_k=5"], ["'knn_k'", "not read by RLMultimodalRec", "LATTICE"], code=0),
    # ---- models
    "unknown-model": Case([], ["Unknown model 'Foo'", "RecBole built-in"], model="Foo"),
    "misspelled-model": Case([], ["Unknown model 'LightGNC'", "Did you mean LightGCN"], model="LightGNC"),
    # ---- config files and output folders
    "config-file-missing": Case(["--config_files", "nope.yaml"], ["nope.yaml", "does not exist"]),
    "config-file-bad-yaml": Case([], ["bad.yaml", "not valid YAML", "line 2"], edit=_config_file("epochs: 5\nfusion: gate: sum\n", "bad.yaml")),
    "config-file-not-mapping": Case([], ["list.yaml", "holds a list"], edit=_config_file("- epochs\n- 5\n", "list.yaml")),
    "checkpoint_dir-is-a-file": Case(["--checkpoint_dir=ckpt"], ["checkpoint_dir='ckpt'", "is a file"], edit=_a_file("ckpt")),
    "log_dir-inside-a-file": Case(["--log_dir=logfile/sub"], ["log_dir='logfile/sub'", "is a file"], edit=_a_file("logfile")),
    "checkpoint_dir-not-writable": Case(["--checkpoint_dir=ro"], ["checkpoint_dir='ro'", "not writable"], patch=_unwritable),
    # ---- dataset folder and atomic files (checks/data.py)
    "dataset-misspelled": Case(["--dataset=tinny"], ["'tinny'", "tiny"]),
    "missing-valid-file": Case([], ["tiny.valid.inter", "missing", "tiny.train.inter"], edit=lambda f, _t: (f / "tiny.valid.inter").unlink()),
    "no-inter-file": Case(["--benchmark_filename=None"], ["tiny.inter", "does not exist", "benchmark_filename: [train, valid, test]"]),
    "header-without-type": Case([], ["tiny.train.inter", "'user_id'", "has no type", "user_id:token"], edit=_header("tiny.train.inter", "user_id\titem_id")),
    "header-unknown-type": Case([], ["tiny.train.inter", "'item_id'", "'int'", "token, token_seq"], edit=_header("tiny.train.inter", "user_id:token\titem_id:int")),
    "comma-separated": Case(
        [], ["tiny.train.inter", "comma-separated", "field_separator"],
        edit=_lines("tiny.train.inter", lambda lines: [line.replace("\t", ",") for line in lines]),
    ),
    "renamed-item-column": Case([], ["tiny.train.inter", "no column 'item_id'", "ITEM_ID_FIELD", "item:token"], edit=_header("tiny.train.inter", "user_id:token\titem:token")),
    "missing-user-column": Case([], ["tiny.valid.inter", "'user_id'", "USER_ID_FIELD"], edit=_lines("tiny.valid.inter", lambda lines: [line.split("\t")[1] for line in lines])),
    "id-column-float": Case([], ["tiny.test.inter", "'item_id'", "type float", "token"], edit=_header("tiny.test.inter", "user_id:token\titem_id:float")),
    "duplicate-column": Case([], ["tiny.train.inter", "'user_id' twice"], edit=_header("tiny.train.inter", "user_id:token\tuser_id:token")),
    "empty-train-file": Case([], ["tiny.train.inter", "is empty"], edit=_write("tiny.train.inter", "")),
    "header-only-train": Case([], ["tiny.train.inter", "no interactions"], edit=_write("tiny.train.inter", "user_id:token\titem_id:token\n")),
    "header-only-valid": Case([], ["tiny.valid.inter", "validation", "undefined"], edit=_write("tiny.valid.inter", "user_id:token\titem_id:token\n")),
    "header-only-test": Case([], ["tiny.test.inter", "test", "undefined"], edit=_write("tiny.test.inter", "user_id:token\titem_id:token\n")),
    # an extra field beyond the header: RecBole (pandas) drops it, so a warning; on the first
    # row pandas would shift every column, so an error (checks/data.py)
    "extra-field": Case([], ["tiny.train.inter: line 3 has more fields than the header's 2", "RecBole reads the first 2"], code=0, edit=_lines("tiny.train.inter", lambda lines: [*lines[:2], lines[2] + "\t5", *lines[3:]])),
    "extra-field-first-row": Case([], ["tiny.train.inter", "line 2, the first row", "3 fields", "shift every column"], edit=_lines("tiny.train.inter", lambda lines: [lines[0], lines[1] + "\t5", *lines[2:]])),
    "missing-field": Case([], ["tiny.train.inter", "line 4", "1 fields", "item_id is missing"], edit=_lines("tiny.train.inter", lambda lines: [*lines[:3], lines[3].split("\t")[0], *lines[4:]])),
    # ---- process counts (checks/run.py), before anything starts
    "nproc-zero": Case(["--nproc", "0"], ["nproc=0 is invalid", ">= 1", "--nproc"]),
    "nproc-negative": Case(["--nproc", "-2"], ["nproc=-2 is invalid"]),
    "world-size-below-nproc": Case(["--nproc", "2", "--world_size", "1"], ["nproc=2", "exceed world_size=1", "--world_size"]),
    "group-offset-negative": Case(["--group_offset", "-1", "--world_size", "2"], ["group_offset=-1 is invalid"]),
    "empty-user-id": Case([], ["tiny.train.inter", "line 2", "empty user_id"], edit=_lines("tiny.train.inter", lambda lines: [lines[0], "\t" + lines[1].split("\t")[1], *lines[2:]])),
    "bad-timestamp": Case([], ["tiny.train.inter", "line 5", "timestamp", "'yesterday'"], edit=_timestamps),
    "load_col-missing-column": Case(["--load_col={'inter':['user_id','item_id','rating']}"], ["tiny.train.inter", "load_col.inter", "'rating'"]),
    "inter-not-utf8": Case([], ["tiny.train.inter", "byte", "not valid utf-8"], edit=_lines_bytes("tiny.train.inter", b"u1\t\xff\xfe\n")),
    # ---- feature files (checks/features.py, data/features.py)
    "all-zero-modalities": Case([], ["tiny.image.npy", "carries no information", "--fusion=none"], edit=_features(np.zeros_like, ("image", "text"))),
    "constant-modality": Case([], ["tiny.text.npy", "identical", "standardisation"], edit=_features(lambda x: np.ones_like(x), ("text",))),
    "float64-overflow": Case([], ["tiny.image.npy", "float32", "row 7", "1e+300"], edit=_features(_set(7, 1e300))),
    "npy-empty": Case([], ["tiny.image.npy", "empty (0 bytes)"], edit=_write("tiny.image.npy", b"")),
    "npy-is-text": Case([], ["tiny.image.npy", "not a .npy file", "it is text"], edit=_write("tiny.image.npy", "0.1 0.2 0.3\n0.4 0.5 0.6\n")),
    "npy-is-zip": Case([], ["tiny.image.npy", "not a .npy file", "zip archive"], edit=_npz),
    "npy-truncated": Case([], ["tiny.image.npy", "truncated"], edit=_truncated),
    "index-not-utf8": Case([], ["tiny.item_index", "byte 3", "UTF-8"], edit=_write("tiny.item_index", b"i0\n\xff1\n" + "".join(f"i{k}\n" for k in range(2, 40)).encode())),
    "index-is-a-folder": Case([], ["tiny.item_index", "is a folder"], edit=_folder_as("tiny.item_index")),
    "index-half-unknown": Case([], ["tiny.image.npy", "20 of its 40 rows (50%)", "another dataset", "'x0'"], edit=_unknown_tokens(20)),
    "index-missing-items-shifted": Case([], ["tiny.image.npy", "no item index", "'40'", "tiny.item_index"], edit=_shift_items, data={"index": False}),
    "item_index_file-missing": Case(["--item_index_file=nope.idx"], ["nope.idx", "not found", "item_index_file"]),
    "fusion-image-without-image": Case(["--fusion=image", "--modalities={'text':'tiny.text.npy'}"], ["fusion='image'", "'image' entry"]),
    "VBPR-without-features": Case(["--modalities={}"], ["VBPR", "`modalities`"], model="VBPR"),
    # the feature-file cases that had good messages already, now through the command line
    "nan": Case([], ["tiny.image.npy", "NaN or inf", "row 7"], edit=_write("tiny.image.npy", _nan)),
    "inf": Case([], ["tiny.image.npy", "NaN or inf", "row 9"], edit=_write("tiny.image.npy", _inf)),
    "one-dimensional": Case([], ["tiny.image.npy", "2-D", "shape (40,)"], edit=_write("tiny.image.npy", np.ones(40, dtype=np.float32))),
    "three-dimensional": Case([], ["tiny.image.npy", "2-D"], edit=_write("tiny.image.npy", np.ones((40, 2, 3), dtype=np.float32))),
    "wrong-dim": Case(["--modalities={'image':{'file':'tiny.image.npy','dim':99},'text':'tiny.text.npy'}"], ["tiny.image.npy", "dimension 12", "dim: 99"]),
    "integer-dtype": Case([], ["tiny.image.npy", "dtype int64", "float32"], edit=_write("tiny.image.npy", np.ones((40, 12), dtype=np.int64))),
    "pickled-objects": Case([], ["tiny.image.npy", "without pickle", "np.save"], edit=_write("tiny.image.npy", np.array([{"a": 1}] * 40, dtype=object))),
    "duplicate-token": Case([], ["tiny.item_index", "'i2'", "listed twice", "lines 3 and 6"], edit=_write("tiny.item_index", _index_lines(40, dup=True))),
    "more-rows-than-index": Case([], ["tiny.image.npy", "40 rows", "only 30"], edit=_write("tiny.item_index", _index_lines(30))),
    "fewer-rows-than-index": Case([], ["tiny.image.npy", "40 rows", "lists 45", "'i40'"], edit=_write("tiny.item_index", _index_lines(45))),
    "no-matching-tokens": Case([], ["tiny.image.npy", "none of its 40 rows", "'x0'"], edit=_write("tiny.item_index", "\n".join(f"x{k}" for k in range(40)))),
    "missing-feature-files": Case(["--modalities={'image':'nope.npy','text':'gone.npy'}"], ["nope.npy (image)", "gone.npy (text)", "--fusion=none"]),
    "modalities-not-mapping": Case(["--modalities=['tiny.image.npy']"], ["modalities=", "must map modality names"]),
    # ---- legitimate but noteworthy: trains and says what it did
    "all-zero-with-fusion-none": Case(["--fusion=none"], [], code=0, edit=_features(np.zeros_like, ("image", "text")), stdout=["fusion: none (ID only)"]),
    "few-unknown-tokens": Case([], ["2 of the 40 rows", "tiny.image.npy", "ignored"], code=0, edit=_unknown_tokens(2), stdout=["fusion: gate (vector) over image"]),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input(case_id: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[case_id]
    clear_cache()
    root = tmp_path / "data"
    folder = make_dataset(root, **case.data)
    extra = (case.edit(folder, tmp_path) or []) if case.edit else []
    if case.patch:
        case.patch(monkeypatch)
    argv = ["run", "-m", case.model, "-d", "tiny", f"--data_path={root}", *FAST, *(TOPK if case.topk else []), *case.args, *extra]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == case.code, err[-3000:]
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("recbole-rlmm: error:")]
    if case.code == 2:
        assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], err[-3000:]
        for fragment in case.expect:
            assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
        # nothing trained: no checkpoint, no resume file, no result printed
        assert not list(tmp_path.rglob("*.pth"))
        assert out == ""
    else:
        assert not errors
        for fragment in case.expect:
            assert fragment in err, f"{fragment!r} not in stderr:\n{err[-3000:]}"
        for fragment in case.stdout:
            assert fragment in out, out


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) >= 50


# --------------------------------------------------------------------------- other commands


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_dataset(root)
    from recbole_rlmm.config import ConfigError

    with pytest.raises(ConfigError, match="fusion='bogus'"):
        main(["--debug", "run", "-d", "tiny", f"--data_path={root}", "--fusion=bogus"])


def test_compare_refuses_a_bad_value_before_training(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    make_dataset(root)
    fake = FakeRunner()
    monkeypatch.setattr("recbole_rlmm.experiment.compare.run_recbole_rlmm", fake)
    code = main(["compare", "-d", "tiny", "--models", "BPR", "RLMultimodalRec", "--seeds", "1",
                 "--set", f"data_path={root}", "fusion=bogus", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("recbole-rlmm: error: config key fusion='bogus'") and err.count("\n") == 1
    assert fake.calls == []


def test_compare_checks_the_data_before_any_run(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    folder = make_dataset(root)
    (folder / "tiny.test.inter").write_text("user_id:token\titem_id:token\n")
    fake = FakeRunner()
    monkeypatch.setattr("recbole_rlmm.experiment.compare.run_recbole_rlmm", fake)
    code = main(["compare", "-d", "tiny", "--models", "BPR", "LightGCN", "--seeds", "1",
                 "--set", f"data_path={root}", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "tiny.test.inter" in err and "undefined" in err and err.count("\n") == 1
    assert fake.calls == []


def test_tune_refuses_a_bad_value_in_the_space(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    make_dataset(root)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"fusion": ["gate", "bogus"]}))
    fake = FakeRunner()
    monkeypatch.setattr("recbole_rlmm.experiment.tune.run_recbole_rlmm", fake)
    code = main(["tune", "-m", "RLMultimodalRec", "-d", "tiny", "--space", str(space), "--set", f"data_path={root}",
                 "--out", str(tmp_path / "tuned")])
    err = capsys.readouterr().err
    assert code == 2 and "fusion='bogus'" in err and "space.yaml" in err and err.count("\n") == 1
    assert fake.calls == []


def test_prepare_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["prepare", "table", "--inter", str(tmp_path / "nope.csv"), "--name", "x", "--out", str(tmp_path / "ds")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.csv" in err
    assert [line for line in err.splitlines() if line.startswith("recbole-rlmm: error:")] == [err.splitlines()[-1]]


def test_compare_retrains_when_the_data_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recbole_rlmm.experiment.compare import compare

    root = tmp_path / "data"
    folder = make_dataset(root)
    fake = FakeRunner()
    monkeypatch.setattr("recbole_rlmm.experiment.compare.run_recbole_rlmm", fake)
    kwargs = {"dataset": "tiny", "models": ["BPR", "RLMultimodalRec"], "seeds": [1], "out": tmp_path / "out",
              "overrides": {"data_path": str(root), "topk": [10, 20], "valid_metric": "Recall@20"}}
    lines: list[str] = []
    compare(**kwargs, echo=lines.append)
    assert len(fake.calls) == 2
    compare(**kwargs, echo=lines.append)
    assert len(fake.calls) == 2  # nothing changed: both reused
    x = np.load(folder / "tiny.image.npy")
    np.save(folder / "tiny.image.npy", x * 2)
    lines.clear()
    compare(**kwargs, echo=lines.append)
    # RLMultimodalRec reads the image features: retrained; BPR reads none: reused
    assert [c["model"] for c in fake.calls[2:]] == ["RLMultimodalRec"]
    assert any("data changed since the stored run (tiny.image.npy)" in line for line in lines), lines
    (folder / "tiny.train.inter").write_text((folder / "tiny.train.inter").read_text() + "u0\ti39\n")
    compare(**kwargs, echo=lines.append)
    assert [c["model"] for c in fake.calls[3:]] == ["BPR", "RLMultimodalRec"]


@pytest.mark.slow
def test_concurrent_runs_write_separate_log_files(tmp_path: Path) -> None:
    """Two runs of the same command started at the same moment (same second): each writes
    its own log file, neither writes into the other's."""
    root = tmp_path / "data"
    make_dataset(root)
    args = [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-m", "BPR", "-d", "tiny", f"--data_path={root}",
            "--epochs=1", "--state=INFO", "--tensorboard_dir=~", "--topk=[5,10,20]", f"--log_dir={tmp_path / 'logs'}"]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    logs = sorted((tmp_path / "logs" / "BPR").glob("*.log"))
    assert len(logs) == 2
    pids = {str(p.pid) for p in procs}
    for log in logs:
        text = log.read_text()
        assert text.count("test result") == 1  # one run per file
        assert any(f"-{pid}-" in log.name for pid in pids)


# --------------------------------------------------------------------------- rough edges (issue 24)


def test_version_answers_from_both_spellings_of_the_command() -> None:
    """`python run_recbole_rlmm.py --version` is `recbole-rlmm --version` (one parser path)."""
    from recbole_rlmm import __version__

    for args in (["run_recbole_rlmm.py", "--version"], ["-m", "recbole_rlmm.cli", "--version"],
                 ["run_recbole_rlmm.py", "-d", "tiny", "--version"]):
        out = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert (out.returncode, out.stdout.strip()) == (0, f"recbole-rlmm {__version__}"), out.stderr


def test_debug_works_after_the_command_of_run_recbole_rlmm_py(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO / "run_recbole_rlmm.py"), "--nproc", "0", "--debug"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" in out.stderr and "nproc=0 is invalid" in out.stderr


def test_nosave_reports_the_best_epoch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The best epoch is the one RecBole's early stopping keeps, saved or not."""
    root = tmp_path / "data"
    make_dataset(root)
    base = ["run", "-m", "BPR", "-d", "tiny", f"--data_path={root}", *FAST, *TOPK, "--epochs=4"]
    summaries = []
    for extra in (["--nosave"], []):
        assert main([*base, *extra]) == 0
        summaries.append(capsys.readouterr().out.splitlines()[0])
    assert "best epoch -1" not in summaries[0] and summaries[0] == summaries[1], summaries


def _limited(limit: int) -> Callable[[], None]:
    """A child process's file-size limit (``ulimit -f``), with SIGXFSZ ignored so that a write
    beyond it fails with EFBIG as on a full disk, instead of killing the process."""
    def preexec() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.slow
def test_a_refused_checkpoint_write_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    """A file-size limit while the best model is saved: one warning naming the file, the reason
    and what happens; the run keeps the best model in memory and ends with the metrics of an
    unlimited run."""
    root = tmp_path / "data"
    make_dataset(root)
    args = [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-d", "tiny", f"--data_path={root}", *FAST, *TOPK,
            "--epochs=3", "--log_dir=~", "--stopping_step=10"]
    free = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert free.returncode == 0, free.stderr[-3000:]
    limited_dir = tmp_path / "limited"
    limited_dir.mkdir()
    limited = subprocess.run(args, cwd=limited_dir, capture_output=True, text=True, timeout=300,
                             preexec_fn=_limited(4096))
    assert limited.returncode == 0, limited.stderr[-3000:]
    assert "Traceback" not in limited.stderr
    warning = next(line for line in limited.stderr.splitlines() if "cannot write" in line and ".resume" not in line)
    assert "saved/RLMultimodalRec-tiny-" in warning and "file-size limit (4,096 bytes" in warning
    assert "kept in memory" in warning and "no earlier best model was saved" in warning
    def results(stdout: str) -> list[str]:
        return [line for line in stdout.splitlines() if not line.startswith("time:")]

    assert results(limited.stdout) == results(free.stdout)  # same best epoch and metrics (model kept in memory)
    assert not [p for p in limited_dir.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written


@pytest.mark.slow
def test_a_refused_output_file_is_one_line(tmp_path: Path) -> None:
    """Every file goes through one atomic write: `export` under a file-size limit stops with one
    line naming the file and the reason, and leaves nothing half-written."""
    root = tmp_path / "data"
    make_dataset(root)
    run = subprocess.run([sys.executable, str(REPO / "run_recbole_rlmm.py"), "-m", "BPR", "-d", "tiny",
                          f"--data_path={root}", *FAST, *TOPK, "--log_dir=~"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    checkpoint = next((tmp_path / "saved").glob("BPR-*.pth"))
    out = subprocess.run([sys.executable, "-m", "recbole_rlmm.cli", "export", "--checkpoint", str(checkpoint),
                          "--out", str(tmp_path / "vectors")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, preexec_fn=_limited(100))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("recbole-rlmm: error: cannot write ") and str(tmp_path / "vectors") in line
    assert "file-size limit (100 bytes" in line
    assert not [p for p in (tmp_path / "vectors").rglob("*") if p.is_file()]


@pytest.mark.slow
def test_redirected_output_has_no_colour_codes_and_a_terminal_has_them(tmp_path: Path) -> None:
    import pty

    root = tmp_path / "data"
    make_dataset(root)
    args = [sys.executable, str(REPO / "run_recbole_rlmm.py"), "-m", "BPR", "-d", "tiny", f"--data_path={root}",
            *FAST, *TOPK, "--state=INFO", "--log_dir=~", "--nosave"]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "INFO" in out.stderr
    assert "\x1b[" not in out.stderr and "\x1b[" not in out.stdout
    main_fd, child_fd = pty.openpty()  # stderr a terminal, as in an interactive shell
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=child_fd)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=300) == 0
    os.close(main_fd)
    assert b"\x1b[" in b"".join(chunks)


def test_result_lines_read_as_recbole_users_know_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """numpy 2 wrote RecBole's result dicts as OrderedDict([('recall@10', np.float64(0.117)), ...])."""
    root = tmp_path / "data"
    make_dataset(root)
    with caplog.at_level("INFO"):
        assert main(["run", "-m", "BPR", "-d", "tiny", f"--data_path={root}", *FAST[:-2], *TOPK, "--state=INFO",
                     "--log_dir=~", "--tensorboard_dir=~", "--nosave"]) == 0
    import re

    messages = [re.sub(r"\x1b\[[0-9;]*m", "", r.getMessage()) for r in caplog.records]
    lines = [m for m in messages if m.startswith(("best valid", "test result"))]
    assert len(lines) == 2 and "np.float64" not in caplog.text
    assert all(re.match(r"(best valid |test result): recall@5 : [0-9.]+    recall@10 : ", line) for line in lines), lines

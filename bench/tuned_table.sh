#!/usr/bin/env bash
# Issue 22's tuned table (docs/RESULTS.md): every model, ours and RecBole's LightGCN, tuned on
# validation with the same Optuna budget (TRIALS trials each: TPE, median pruning from per-epoch
# validation), then 3 seeds of each tuned model; test Recall@20 / NDCG@20 with spreads and the
# seconds per epoch, in bench/tuned-table/<dataset>/results.md.
#   bash bench/tuned_table.sh scientific|movielens-mm|movielens-cold [MODEL ...]
# Resumable across calls, machines and sessions: the studies (SQLite), tuned yamls and finished
# runs live in bench/tuned-table/<dataset>/ and are committed (checkpoints are not), so a later
# call trains only what is missing and a call with every model (all of it stored) tabulates.
# One training at a time, one thread; two calls with disjoint MODEL lists share two cores.
# TRIALS (default 10: the untuned configuration, 2 random trials, 7 by TPE; docs/TUNE.md), OUT, DATA, and
# SET: more KEY=VALUE settings for every run (e.g. SET="epochs=2" for a smoke test; a changed
# setting trains again). MALLOC=jemalloc (or glibc-kept) trains under that allocator
# (bench/malloc.py: the same results in less CPU time; every model alike, so the seconds per
# epoch stay comparable within a table).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
[ -z "${MALLOC:-}" ] || eval "$(python bench/malloc.py "$MALLOC")"
TRIALS=${TRIALS:-10}
OUT=${OUT:-bench/tuned-table}
DATA=${DATA:-/tmp/rlmm-data}
DATASET=${1:?usage: bash bench/tuned_table.sh scientific|movielens-mm|movielens-cold [MODEL ...]}
shift
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(LightGCN RLMultimodalRec VBPR MMGCN LATTICE FREEDOM BM3 MGCN LGMRec SMORE MENTOR)
OPTS=(--seeds 2020 2021 2022 --tune-trials "$TRIALS" --threads 1 --out "$OUT/$DATASET"
      --set log_dir=None tensorboard_dir=None ${SET:-})
case "$DATASET" in
  scientific)
    [ -f "$DATA/scientific/scientific.text.npy" ] || python bench/build_scientific.py --out "$DATA"
    OPTS+=(data_path="$DATA" --config_files bench/configs/scientific.yaml) ;;
  movielens-cold)
    [ -f "$DATA/movielens-cold/movielens-cold.text.npy" ] || python bench/build_cold.py --out "$DATA"
    OPTS+=(data_path="$DATA") ;;
  movielens-mm) ;;  # embedded in dataset/
  *) echo "bench/tuned_table.sh: unknown dataset '$DATASET' (scientific, movielens-mm, movielens-cold)" >&2; exit 2 ;;
esac
recbole-rlmm compare -d "$DATASET" -m "${MODELS[@]}" "${OPTS[@]}"
# what tuning did per model (untuned trial 0 against the selected one), from every study so far
python bench/tuning_summary.py "$OUT/$DATASET/tuned" --out "$OUT/$DATASET/tuning.md"

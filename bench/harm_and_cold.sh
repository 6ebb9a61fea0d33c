#!/usr/bin/env bash
# The do-no-harm and cold-start tables of docs/RESULTS.md (shipped defaults, 3 seeds).
#   bash bench/harm_and_cold.sh harm    # LightGCN vs RLMultimodalRec on every dataset (+ pure noise)
#   bash bench/harm_and_cold.sh cold    # the cold-start benchmark: 6 models, then cold-only metrics
# (movielens-cold's do-no-harm row comes from the cold run)
# Resumable (compare reuses finished runs). One training at a time, one thread; two calls share 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results}
DATA=${DATA:-/tmp/rlmm-data}
SEEDS=(2020 2021 2022)
QUIET=(--set log_dir=None tensorboard_dir=None)

[ -f "$DATA/scientific/scientific.text.npy" ] || python bench/build_scientific.py --out "$DATA"
[ -f "$DATA/movielens-noise/movielens-noise.text.npy" ] || python bench/build_noise.py --out "$DATA"
[ -f "$DATA/movielens-cold/movielens-cold.text.npy" ] || python bench/build_cold.py --out "$DATA"

case "${1:-}" in
  harm)
    recbole-rlmm compare -d movielens-mm -m LightGCN RLMultimodalRec --seeds "${SEEDS[@]}" --out "$OUT/harm/movielens-mm" "${QUIET[@]}"
    recbole-rlmm compare -d scientific -m LightGCN RLMultimodalRec --seeds "${SEEDS[@]}" \
      --config_files bench/configs/scientific.yaml --out "$OUT/harm/scientific" "${QUIET[@]}" data_path="$DATA"
    # LightGCN reads no features: on movielens-noise (the same interactions) its runs are its
    # movielens-mm runs, metric for metric, so only the content model is trained there
    recbole-rlmm compare -d movielens-noise -m RLMultimodalRec --seeds "${SEEDS[@]}" \
      --out "$OUT/harm/movielens-noise" "${QUIET[@]}" data_path="$DATA"
    ;;
  cold)
    # the baselines once (seed 2020: LightGCN, LATTICE and Pop score every cold item alike in full
    # ranking, so their validation never improves and they run all 300 epochs), ours with 3 seeds
    recbole-rlmm compare -d movielens-cold -m Pop LightGCN VBPR LATTICE FREEDOM --seeds 2020 \
      --out "$OUT/cold" "${QUIET[@]}" data_path="$DATA"
    recbole-rlmm compare -d movielens-cold -m RLMultimodalRec --seeds "${SEEDS[@]}" \
      --out "$OUT/cold" "${QUIET[@]}" data_path="$DATA"
    python bench/cold_start.py "$OUT"/cold/checkpoints/*/*.pth
    ;;
  *) echo "usage: bash bench/harm_and_cold.sh harm|cold" >&2; exit 2 ;;
esac

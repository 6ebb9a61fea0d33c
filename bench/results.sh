#!/usr/bin/env bash
# Reproduce the tables of docs/RESULTS.md (tuning on validation, then compare on 3 seeds).
#   bash bench/results.sh movielens-mm | scientific | amazon        (one dataset per call)
# Each step is resumable: `compare` reuses finished runs, so an interrupted call can be re-run.
# Runs one training at a time with one thread; OMP_NUM_THREADS=1 lets two calls share 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
OUT=${OUT:-results}
SEEDS=(2020 2021 2022)
MODELS=(BPR LightGCN VBPR LATTICE FREEDOM RLMultimodalRec MMGCN)
TUNED=("${MODELS[@]}")  # every model: the same 4-trial grid budget (bench/spaces/)

tune_all() {  # $1 dataset, rest: extra args
  local ds=$1; shift
  for m in "${TUNED[@]}"; do
    [ -f "$OUT/tuned/$m-$ds.yaml" ] || recbole-rlmm tune --model "$m" --dataset "$ds" \
      --space "bench/spaces/$m.yaml" --sampler grid --out "$OUT/tuned" "$@"
  done
}

model_configs() {  # $1 dataset
  for m in "${TUNED[@]}"; do printf '%s=%s ' "$m" "$OUT/tuned/$m-$1.yaml"; done
}

case "${1:-}" in
  movielens-mm)
    tune_all movielens-mm
    # shellcheck disable=SC2046
    recbole-rlmm compare --dataset movielens-mm --seeds "${SEEDS[@]}" \
      --models "${MODELS[@]}" \
      --model-config $(model_configs movielens-mm) --out "$OUT/movielens-mm"
    ;;
  scientific)
    DATA=${DATA:-/tmp/rlmm-data}
    [ -f "$DATA/scientific/scientific.text.npy" ] || python bench/build_scientific.py --out "$DATA"
    CFG=(--config_files bench/configs/scientific.yaml "$DATA/scientific/scientific.yaml")
    tune_all scientific "${CFG[@]}"
    # shellcheck disable=SC2046
    recbole-rlmm compare --dataset scientific --seeds "${SEEDS[@]}" "${CFG[@]}" \
      --models "${MODELS[@]}" \
      --model-config $(model_configs scientific) --out "$OUT/scientific"
    ;;
  amazon)
    # ID-only models (MMRec's Amazon feature files cannot be obtained here).
    recbole-rlmm compare --dataset amazon --seeds "${SEEDS[@]}" \
      --config_files bench/configs/amazon.yaml \
      --models BPR LightGCN RLMultimodalRec --set fusion=none --out "$OUT/amazon"
    ;;
  *) echo "usage: bash bench/results.sh movielens-mm|scientific|amazon" >&2; exit 2 ;;
esac

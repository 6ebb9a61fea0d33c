#!/usr/bin/env bash
# The main command on one process and on two (RecBole's DDP, gloo on the CPU), side by side
# (docs/RESULTS.md, "Several processes"). Same seed, same data, same schedule.
#   bash bench/distributed.sh [extra --key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/distributed}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
for run in single:1 two:2; do
  name=${run%%:*}; n=${run##*:}
  start=$(date +%s.%N)
  OMP_NUM_THREADS=$((2 / n)) python run_recbole_rlmm.py --nproc "$n" --port $((29500 + n)) \
    --log_dir="$OUT/log" --tensorboard_dir=None --checkpoint_dir="$OUT/saved" "$@" > "$OUT/$name.txt" 2>&1
  end=$(date +%s.%N)
  echo "$name ($n process(es), $((2 / n)) thread(s) each): wall $(echo "$end - $start" | bc) s" | tee -a "$OUT/$name.txt"
  grep -A 12 "RLMultimodalRec on" "$OUT/$name.txt" | head -16
done

#!/usr/bin/env bash
# The experiments behind README's "Baselines and generalisation" section, in the order they are
# run on a 2-core CPU machine (one thread each; two at a time at most). Every command resumes
# from its checkpoints and skips runs that already have a bundle, so rerunning this script
# continues where it stopped. Run from the repository root:
#
#   bash scripts/baseline_experiments.sh [NAME ...]     # all, or only the named experiments
#
# Names: lstm seeds_dynamic seeds_lstm pub_static pur_static pub_dynamic pur_dynamic pub_lstm
# pur_lstm. Wall time on one core (quiet machine): δn 8 min, δn(γt,βt) 25-30 min, LSTM 1.5-2 h
# per run (x 2 seeds, x 5 PUB folds, x 4 PUR groups).
set -euo pipefail
export OMP_NUM_THREADS=1
EXP=${EXP:-runs/exp}
run() {
  case "$1" in
    lstm) lstm-train --config configs/lstm_full.yaml --no-progress ;;
    seeds_dynamic) delta-experiment seeds --config configs/dhbv_dynamic_full.yaml \
        --seeds 111111 222222 333333 --reuse 111111=bmi_dhbv/weights/dhbv_dynamic.pt \
        --out "$EXP/seeds_dhbv_dynamic" --no-progress ;;
    seeds_lstm) delta-experiment seeds --config configs/lstm_full.yaml \
        --seeds 111111 222222 333333 --reuse 111111=benchmarks/results/lstm_full/bundle.pt \
        --out "$EXP/seeds_lstm" --no-progress ;;
    pub_static) delta-experiment pub --config configs/dhbv_static_full.yaml \
        --out "$EXP/pub_dhbv_static" --no-progress ;;
    pur_static) delta-experiment pur --config configs/dhbv_static_full.yaml \
        --out "$EXP/pur_dhbv_static" --no-progress ;;
    pub_dynamic) delta-experiment pub --config configs/dhbv_dynamic_full.yaml \
        --out "$EXP/pub_dhbv_dynamic" --no-progress ;;
    pur_dynamic) delta-experiment pur --config configs/dhbv_dynamic_full.yaml \
        --out "$EXP/pur_dhbv_dynamic" --no-progress ;;
    pub_lstm) delta-experiment pub --config configs/lstm_full.yaml \
        --out "$EXP/pub_lstm" --no-progress ;;
    pur_lstm) delta-experiment pur --config configs/lstm_full.yaml \
        --out "$EXP/pur_lstm" --no-progress ;;
    *) echo "unknown experiment $1" >&2; exit 2 ;;
  esac
}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(lstm seeds_dynamic pub_static pur_static pub_dynamic pur_dynamic seeds_lstm pub_lstm
         pur_lstm)
fi
for n in "${names[@]}"; do
  echo "== $n $(date -u +%FT%TZ)"
  run "$n"
done

#!/usr/bin/env bash
# The experiments behind README's "Baselines and generalisation" section, in the order they are
# run on a 2-core CPU machine (one thread each; two at a time at most). Every command resumes
# from its checkpoints and skips runs that already have a bundle, so rerunning this script
# continues where it stopped. Run from the repository root:
#
#   bash scripts/baseline_experiments.sh [NAME ...]     # all, or only the named experiments
#   FOLD=3 bash scripts/baseline_experiments.sh pub_lstm  # one PUB/PUR fold only, so that two
#                                                         # folds train at once; writes no table
#
# Names: dds_hbv dds_cfe lstm seeds_dynamic seeds_lstm pub_static pur_static pub_dynamic
# pur_dynamic pub_lstm pur_lstm. Wall time on one core (quiet machine): DDS-HBV 447 basins 15 min,
# DDS-CFE 100 basins 1.5 h, δn 8 min, δn(γt,βt) 25-30 min, LSTM 1.5-2 h per run (x 2 seeds,
# x 5 PUB folds, x 4 PUR groups).
set -euo pipefail
export OMP_NUM_THREADS=1
EXP=${EXP:-runs/exp}
DATA=${DATA:-../shared/data/camels_us_daily}
# exp KIND CONFIG NAME [OPTIONS...]: one delta-experiment into $EXP/NAME
exp() {
  delta-experiment "$1" --config "configs/$2.yaml" --out "$EXP/$3" --no-progress \
    ${FOLD:+--fold "$FOLD"} "${@:4}"
}
run() {
  case "$1" in
    dds_hbv) python scripts/calibrate_dds.py --model dhbv --n 447 --data "$DATA" --out "$EXP/dds_hbv" ;;
    dds_cfe) python scripts/calibrate_dds.py --model dcfe --n 100 --data "$DATA" --out "$EXP/dds_cfe" ;;
    lstm) lstm-train --config configs/lstm_full.yaml --no-progress ;;
    seeds_dynamic) exp seeds dhbv_dynamic_full seeds_dhbv_dynamic --seeds 111111 222222 333333 \
        --reuse 111111=bmi_dhbv/weights/dhbv_dynamic.pt ;;
    seeds_lstm) exp seeds lstm_full seeds_lstm --seeds 111111 222222 333333 \
        --reuse 111111=delta_core/baselines/weights/lstm_full.pt ;;
    pub_static) exp pub dhbv_static_full pub_dhbv_static ;;
    pur_static) exp pur dhbv_static_full pur_dhbv_static ;;
    pub_dynamic) exp pub dhbv_dynamic_full pub_dhbv_dynamic ;;
    pur_dynamic) exp pur dhbv_dynamic_full pur_dhbv_dynamic ;;
    pub_lstm) exp pub lstm_full pub_lstm ;;
    pur_lstm) exp pur lstm_full pur_lstm ;;
    *) echo "unknown experiment $1" >&2; exit 2 ;;
  esac
}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(dds_hbv dds_cfe lstm seeds_dynamic pub_static pur_static pub_dynamic pur_dynamic
         seeds_lstm pub_lstm pur_lstm)
fi
for n in "${names[@]}"; do
  echo "== $n $(date -u +%FT%TZ)"
  run "$n"
done

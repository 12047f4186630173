#!/bin/sh
# The A/B runs behind docs/experiments.md, one training process at a time, one thread each
# (the lab machine's 2 cores are shared). Run from the repository root:
#   nohup sh training/experiments/run_ab.sh > training/experiments/run_ab.log 2>&1 &
set -e
export CIFAR_S9_CACHE=${CIFAR_S9_CACHE:-.cache/cifar_s9} OMP_NUM_THREADS=1
DATA=${DATA:-../shared/data/cifar10-jpeg}
PY=${PY:-python}
# the lab recipe's own check: does a 3-minute run separate strong from no augmentation?
$PY -m cifar_s9.experiment_cli --question strong-vs-none --minutes 3 --threads 1 --data-dir "$DATA" \
    --out training/experiments/strong_vs_none_3min.json
# the question people ask: does my Coarse Dropout help?
$PY -m cifar_s9.experiment_cli --question no-dropout --minutes 3 --threads 1 --data-dir "$DATA" \
    --out training/experiments/dropout_3min.json
$PY -m cifar_s9.experiment_cli --question no-dropout --minutes 15 --threads 1 --data-dir "$DATA" \
    --out training/experiments/dropout_15min.json

#!/bin/sh
# The 3-minute A/B behind docs/experiments.md, one training process at a time, one thread (the lab
# machine's 2 cores are shared). Run from the repository root:
#   nohup sh training/experiments/run_ab.sh > training/experiments/strong_vs_none_3min.log 2>&1 &
# (strong_vs_none_3min_5000images.json came from the same command under the first draft of the
# lab recipe, 5,000 images at batch 128; its JSON records that config. The fixed-epoch runs are
# in run_ab2.sh.)
set -e
export CIFAR_S9_CACHE=${CIFAR_S9_CACHE:-.cache/cifar_s9} OMP_NUM_THREADS=1
DATA=${DATA:-../shared/data/cifar10-jpeg}
PY=${PY:-python}
# the lab recipe's own check: does a 3-minute run separate the default augmentation from none?
$PY -m cifar_s9.experiment_cli --question strong-vs-none --minutes 3 --threads 1 --data-dir "$DATA" \
    --out training/experiments/strong_vs_none_3min.json

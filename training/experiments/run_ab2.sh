#!/bin/sh
# Coarse Dropout on vs off at fixed epoch counts: 11 epochs is what the trainer's calibration fit
# into 3 minutes per arm on the shared 2-core machine (strong_vs_none_3min.json); 33 epochs is
# three times that. One training process at a time, one thread. From the repository root:
#   nohup sh training/experiments/run_ab2.sh > training/experiments/run_ab2.log 2>&1 &
set -e
export CIFAR_S9_CACHE=${CIFAR_S9_CACHE:-.cache/cifar_s9} OMP_NUM_THREADS=1
DATA=${DATA:-../shared/data/cifar10-jpeg}
PY=${PY:-python}
$PY -m cifar_s9.experiment_cli --question no-dropout --epochs 11 --threads 1 --data-dir "$DATA" \
    --out training/experiments/dropout_11epochs.json
$PY -m cifar_s9.experiment_cli --question no-dropout --epochs 33 --threads 1 --data-dir "$DATA" \
    --out training/experiments/dropout_33epochs.json
# the lab recipe's own check at the longer budget: full augmentation against none
$PY -m cifar_s9.experiment_cli --question strong-vs-none --epochs 33 --threads 1 --data-dir "$DATA" \
    --out training/experiments/strong_vs_none_33epochs.json

#!/usr/bin/env bash
# Issue 17 on a lent GPU, call 1 of 2 (about 5 minutes): train airbench teachers on the training
# images minus the validation split and write their logit bank. Outputs (bank ~28 MB for 32
# views, teacher cards, log) go to $OUT; the teachers' weights stay behind (4 x 18 MB).
# Usage (repo root, the JPEG folder packed at $PACK by training/tools/pack_folder.py, wheels in .whl/):
#   PACK=data/gpupack/cifar10-jpeg.npz TEACHERS=4 EPOCHS=15 WIDTHS="128 384 384" bash training/tools/gpu_bank.sh
# Call 2 trains students from $OUT/bank with gpu_train.sh, e.g.
#   BUDGET=420 bash training/tools/gpu_train.sh \
#     "hi=--recipe full --preset highres --val-per-class 300 --logit-bank runs/bank/bank --distill-alpha 0.9 --distill-temperature 2 --batch-size 512 --lr 0.4 --workers 7" \
#     "def=--recipe full --preset default --val-per-class 300 --logit-bank runs/bank/bank --distill-alpha 0.9 --distill-temperature 2 --batch-size 512 --lr 0.4 --workers 7"
set -eu
PACK=${PACK:-data/gpupack/cifar10-jpeg.npz}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" runs/bank
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
[ -d data/cifar10-jpeg ] || python3 training/tools/pack_folder.py unpack "$PACK" data/cifar10-jpeg
nvidia-smi -L 2>/dev/null || true
python3 -m cifar_s9 teacher-bank --data-dir data/cifar10-jpeg --out runs/bank --device cuda --threads 8 \
  --teachers "${TEACHERS:-4}" --views "${VIEWS:-32}" --epochs "${EPOCHS:-15}" --widths ${WIDTHS:-128 384 384} \
  2>&1 | tee "$OUT/teacher_bank.log"
cp -r runs/bank/bank "$OUT/bank"
ls -la "$OUT" "$OUT/bank"

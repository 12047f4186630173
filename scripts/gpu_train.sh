#!/usr/bin/env bash
# One-shot training on a lent GPU machine: the full recipe with a fixed epoch count (a time
# budget's calibration overran once). The run checkpoints every epoch under runs/, and is
# packed into $OUT/full.tar at the end, finished or not, so a CPU can resume what is left.
# Usage (repo root; data/cifar10-jpeg, or its pack made by scripts/pack_folder.py; wheels in .whl/):
#   EPOCHS=120 HARD_LIMIT=470 bash scripts/gpu_train.sh
set -u
EPOCHS=${EPOCHS:-120}
HARD_LIMIT=${HARD_LIMIT:-470}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" runs
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
[ -d data/cifar10-jpeg ] || python3 scripts/pack_folder.py unpack data/pack/cifar10-jpeg.npz data/cifar10-jpeg
nvidia-smi -L 2>/dev/null
python3 -c "import torch, albumentations; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'albumentations', albumentations.__version__)"
python3 -c "from cifar_s9.data import load_split; [print(s, len(load_split(s, 'data/cifar10-jpeg'))) for s in ('train', 'test')]"

run() {  # name, extra args...
  local name=$1; shift
  timeout "$HARD_LIMIT" python3 -m cifar_s9 train --data-dir data/cifar10-jpeg --epochs "$EPOCHS" \
    --out "runs/$name/model.safetensors" "$@" ${EXTRA:-} > "runs/$name.log" 2>&1
  echo "$name exit $?" >> "runs/$name.log"
}
mkdir -p runs/full
run full --recipe full --workers 12
tr '\r' '\n' < runs/full.log | grep -vE '^\s*[0-9]+%' | tail -4
cp runs/full.log runs/full/train.log
tar cf "$OUT/full.tar" -C runs full
ls -la "$OUT"

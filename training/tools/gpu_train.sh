#!/usr/bin/env bash
# One-shot training on a lent GPU machine: several runs side by side (training/tools/gpu_sweep.py sizes
# each to the budget). Each run checkpoints every epoch under runs/sweep/ and is packed into
# $OUT/<name>.tar at the end, finished or not, so a CPU can resume what is left.
# Usage (repo root; data/cifar10-jpeg, or its pack made by training/tools/pack_folder.py, at $PACK; wheels in .whl/):
#   BUDGET=470 bash training/tools/gpu_train.sh "b128=--recipe full --workers 3" "b512=--recipe full --batch-size 512 --lr 0.4"
set -u
BUDGET=${BUDGET:-470}
PACK=${PACK:-data/pack/cifar10-jpeg.npz}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" runs
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
[ -d data/cifar10-jpeg ] || python3 training/tools/pack_folder.py unpack "$PACK" data/cifar10-jpeg
nvidia-smi -L 2>/dev/null
python3 -c "import torch, albumentations, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'albumentations', albumentations.__version__, 'cv2', cv2.__version__)"
# decode once: the runs then read the cached arrays instead of each decoding 56,000 JPEGs
python3 -c "from cifar_s9.data.cifar import load_split; [print(s, len(load_split(s, 'data/cifar10-jpeg'))) for s in ('train', 'test')]"

jobs=()
for j in "$@"; do jobs+=(--job "$j"); done
python3 training/tools/gpu_sweep.py --budget-s "$BUDGET" --probe-s "${PROBE:-45}" --data-dir data/cifar10-jpeg "${jobs[@]}"
for d in runs/sweep/*/; do
  name=$(basename "$d")
  [ "$name" = probe ] && continue
  tr '\r' '\n' < "$d/train.log" | grep -vE '^\s*[0-9]+%' | tail -3
  tar cf "$OUT/$name.tar" -C runs/sweep "$name"
done
tar cf "$OUT/probe.tar" --exclude='*.pt' --exclude='*.safetensors' -C runs/sweep probe
ls -la "$OUT"

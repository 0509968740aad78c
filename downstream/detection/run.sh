#!/usr/bin/env bash
# COCO detection transfer under the papers' protocol (MoCo / INTL / CW-RGP): Mask R-CNN R50-C4,
# COCO 2017 2x schedule, trained synchronised BN, box and mask AP from pycocotools.
#
#   bash downstream/detection/run.sh CKPT COCO_ROOT [train_coco.py options, e.g. --output DIR]
#
# Runs one process per visible GPU through torchrun (NPROC=N to choose); the total batch stays 16.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: bash downstream/detection/run.sh CKPT COCO_ROOT [train_coco.py options]" >&2
    exit 2
fi
ckpt=$1
coco_root=$2
shift 2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nproc=${NPROC:-$(python -c 'import torch; print(max(torch.cuda.device_count(), 1))')}

exec torchrun --standalone --nproc_per_node "$nproc" "$here/train_coco.py" \
    --ckpt "$ckpt" --coco-root "$coco_root" --config coco_R_50_C4_2x "$@"

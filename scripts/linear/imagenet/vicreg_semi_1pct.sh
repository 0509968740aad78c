#!/usr/bin/env bash
# SS-FB-VIC: semi-supervised finetuning of VICReg on 1% of ImageNet's labels.
# Source: facebookresearch/vicreg evaluate.py --weights finetune + README (its --lr-classifier is --lr-head) (recipes.md §6).
# Target: none in the reference tables.
# Usage: bash scripts/linear/imagenet/vicreg_semi_1pct.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=SS-FB-VIC-1pct linear.protocol=finetune linear.label_fraction=1 linear.epochs=20 linear.batch_size=256 \
  linear.optimizer=sgd linear.lr=0.08 linear.backbone_lr=0.03 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=cosine \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"

#!/usr/bin/env bash
# LP-SS-LARS for SimSiam on ImageNet: frozen backbone, LARS (SGD + LARC 0.001) lr 1.6, batch 4096, 90 epochs, cosine.
# Source: facebookresearch/simsiam main_lincls.py --lars (recipes.md §6).
# Target: 68.1 top-1 (simsiam README).
# Usage: bash scripts/linear/imagenet/simsiam.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-SS-LARS linear.protocol=frozen linear.epochs=90 linear.batch_size=4096 \
  linear.optimizer=lars linear.lars_eta=0.001 linear.lr=1.6 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=cosine \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"

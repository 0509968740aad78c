#!/usr/bin/env bash
# LP-CW-LARS for CW-RGP on ImageNet: frozen backbone, LARS (SGD + LARC 0.001) lr 0.4, batch 1024, 100 epochs, cosine.
# Source: winci-ai/CW-RGP ImageNet/lincls.py --lars (recipes.md §6).
# Target: 69.7 / 71.0 top-1 after 100 / 200 epochs (CW-RGP README).
# Usage: bash scripts/linear/imagenet/cwrgp.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_linear "$@"
exec "$PYTHON" "$ZOO_ROOT/main_linear.py" "${ZOO_ARGS[@]}" \
  linear.name=LP-CW-LARS linear.protocol=frozen linear.epochs=100 linear.batch_size=1024 \
  linear.optimizer=lars linear.lars_eta=0.001 linear.lr=0.4 linear.momentum=0.9 linear.weight_decay=0 linear.schedule=cosine \
  'linear.crop_scale=[0.08,1.0]' linear.crop_interpolation=bilinear linear.knn_k=0 \
  "${USER_ARGS[@]}"

#!/usr/bin/env bash
# LP-INTL for INTL on ImageNet-100: frozen backbone, SGD lr 0.2, batch 256, 100 epochs, steps at 60 / 80; plus 5-nn.
# Source: winci-ai/INTL evaluate.py + scripts/in100.sh (recipes.md §6); the 5-nn is LP-SMALL's [P].
# Target: 81.68 top-1, 73.46 5-nn, 95.42 top-5 (INTL README).
# Variant: LP-INTL as in ../imagenet/intl.sh, plus the 5-nn.
# Usage: bash scripts/linear/imagenet-100/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant ../imagenet/intl.sh linear.knn_k=5 -- "$@"

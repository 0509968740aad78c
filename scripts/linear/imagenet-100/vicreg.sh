#!/usr/bin/env bash
# LP-SOLO for VICReg on ImageNet-100: frozen backbone, SGD lr 0.3, batch 256, 100 epochs, steps at 60 / 80.
# Source: vturrisi/solo-learn scripts/linear/imagenet-100/*.yaml + main_linear.py (recipes.md §6).
# Target: 79.40 top-1 offline (solo-learn README).
# Variant: LP-SOLO as in barlow_twins.sh, with lr 0.3.
# Usage: bash scripts/linear/imagenet-100/vicreg.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant barlow_twins.sh linear.lr=0.3 -- "$@"

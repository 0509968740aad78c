#!/usr/bin/env bash
# LP-SOLO for SimSiam on ImageNet-100: frozen backbone, SGD lr 30.0, batch 256, 100 epochs, steps at 60 / 80.
# Source: vturrisi/solo-learn scripts/linear/imagenet-100/*.yaml + main_linear.py (recipes.md §6).
# Target: 78.72 top-1 offline (solo-learn README).
# Variant: LP-SOLO as in barlow_twins.sh, with lr 30.0.
# Usage: bash scripts/linear/imagenet-100/simsiam.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant barlow_twins.sh linear.lr=30.0 -- "$@"

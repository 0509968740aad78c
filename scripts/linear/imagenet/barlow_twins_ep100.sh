#!/usr/bin/env bash
# LP-SOLO for solo-learn's 100-epoch Barlow Twins: frozen backbone, SGD lr 0.3, wd 1e-5, batch 256, 100 epochs, steps at 60 / 80.
# Source: vturrisi/solo-learn scripts/linear/imagenet/barlow.yaml (recipes.md §6).
# Target: 67.23 top-1 offline (solo-learn README).
# Variant: LP-SOLO as in ../imagenet-100/barlow_twins.sh, with lr 0.3 and wd 1e-5.
# Usage: bash scripts/linear/imagenet/barlow_twins_ep100.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant ../imagenet-100/barlow_twins.sh linear.lr=0.3 linear.weight_decay=1e-5 -- "$@"

#!/usr/bin/env bash
# LP-CW-LARS for W-MSE on ImageNet: frozen backbone, LARS (SGD + LARC 0.001) lr 0.4, batch 1024, 100 epochs, cosine.
# Source: winci-ai/CW-RGP ImageNet/lincls.py --lars (recipes.md §6).
# Target: 65.1 top-1 (INTL / CW-RGP tables, recipe unknown).
# [P] W-MSE has no ImageNet probe of its own; CW-RGP's is used.
# Variant: LP-CW-LARS as in cwrgp.sh.
# Usage: bash scripts/linear/imagenet/wmse.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant cwrgp.sh -- "$@"

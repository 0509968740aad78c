#!/usr/bin/env bash
# LP-SMALL for CW-RGP on CIFAR-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: CW-RGP 4 / CW-RGP 2 runs: see the header of scripts/pretrain/cifar10/cwrgp{,_2views}.sh.
# Normalisation: the pretraining run's own (W-MSE / CW-RGP statistics).
# Variant: LP-SMALL as in wmse.sh.
# Usage: bash scripts/linear/cifar10/cwrgp.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant wmse.sh -- "$@"

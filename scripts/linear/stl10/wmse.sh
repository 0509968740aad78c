#!/usr/bin/env bash
# LP-SMALL for W-MSE on STL-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: W-MSE 4 / W-MSE 2 runs: see the header of scripts/pretrain/stl10/wmse{,_2views}.sh.
# Normalisation: the pretraining run's own (W-MSE / CW-RGP statistics).
# Variant: LP-SMALL as in ../cifar10/wmse.sh.
# Usage: bash scripts/linear/stl10/wmse.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant ../cifar10/wmse.sh -- "$@"

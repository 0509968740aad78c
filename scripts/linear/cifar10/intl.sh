#!/usr/bin/env bash
# LP-SMALL for INTL on CIFAR-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: 92.60 top-1, 90.03 5-nn, 99.80 top-5 (INTL README).
# Evaluation images are normalised with CIFAR-10 statistics, as INTL and solo-learn do (also on CIFAR-100).
# Variant: LP-SMALL as in wmse.sh, with CIFAR-10 evaluation statistics.
# Usage: bash scripts/linear/cifar10/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant wmse.sh 'data.mean=[0.4914,0.4822,0.4465]' 'data.std=[0.247,0.243,0.261]' -- "$@"

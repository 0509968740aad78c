#!/usr/bin/env bash
# LP-SMALL for INTL on CIFAR-100: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6).
# Target: 70.88 top-1, 61.90 5-nn, 92.13 top-5 (INTL README).
# Evaluation images are normalised with CIFAR-10 statistics, as INTL and solo-learn do (also on CIFAR-100).
# Variant: the CIFAR-10 probe (../cifar10/intl.sh) on CIFAR-100.
# Usage: bash scripts/linear/cifar100/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant ../cifar10/intl.sh -- "$@"

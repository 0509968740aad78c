#!/usr/bin/env bash
# LP-SMALL for SimSiam on CIFAR-100: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6); [P] for solo-learn's recipes, which publish no offline CIFAR probe.
# Target: 66.04 / 55.79 top-1 / 5-nn (CW-RGP table copy, recipe unpublished).
# Evaluation images are normalised with CIFAR-10 statistics, as INTL and solo-learn do (also on CIFAR-100).
# Variant: the CIFAR-10 probe (../cifar10/simsiam.sh) on CIFAR-100.
# Usage: bash scripts/linear/cifar100/simsiam.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant ../cifar10/simsiam.sh -- "$@"

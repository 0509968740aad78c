#!/usr/bin/env bash
# LP-SMALL for Barlow Twins on CIFAR-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# Source: the W-MSE protocol, htdt/self-supervised eval/{sgd,knn}.py (= CW-RGP base/eval, INTL cifar/eval) (recipes.md §6); [P] for solo-learn's recipes, which publish no offline CIFAR probe.
# Target: 88.51 / 86.53 top-1 / 5-nn (CW-RGP table copy, recipe unpublished).
# Evaluation images are normalised with CIFAR-10 statistics, as INTL and solo-learn do (also on CIFAR-100).
# Variant: LP-SMALL with CIFAR-10 statistics, as in intl.sh.
# Usage: bash scripts/linear/cifar10/barlow_twins.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
linear_variant intl.sh -- "$@"

#!/usr/bin/env bash
# SimSiam on CIFAR-100: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/cifar/simsiam.yaml (recipes.md §2).
# Protocol: solo-learn online probe (summary.json); LP-SMALL offline (scripts/linear/cifar100/simsiam.sh).
# Target: 66.04 online top-1 (solo-learn README); LP-SMALL 66.04 / 55.79 top-1 / 5-nn (CW-RGP table copy, other recipe).
# Warmup as solo-learn's scheduler: from its absolute 3e-5, lr(s) = 3e-5 + (lr - 3e-5) s/(W-1); the predictor stays at lr 0.5.
# Variant: the CIFAR-10 recipe (../cifar10/simsiam.sh) on CIFAR-100, normalised with its own statistics.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant ../cifar10/simsiam.sh 256 1 1 data.name=cifar100 -- "$@"

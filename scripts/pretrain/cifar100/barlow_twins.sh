#!/usr/bin/env bash
# Barlow Twins on CIFAR-100: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/cifar/barlow.yaml (recipes.md §2).
# Protocol: solo-learn online probe (summary.json); LP-SMALL offline (scripts/linear/cifar100/barlow_twins.sh).
# Target: 70.90 online top-1 (solo-learn README); LP-SMALL 65.78 / 55.76 top-1 / 5-nn (CW-RGP table copy, other recipe).
# Warmup as solo-learn's scheduler: from its absolute 3e-5, lr(s) = 3e-5 + (lr - 3e-5) s/(W-1)
# Variant: the CIFAR-10 recipe (../cifar10/barlow_twins.sh) on CIFAR-100, normalised with its own statistics.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
# global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
pretrain_variant ../cifar10/barlow_twins.sh 256 1 1 data.name=cifar100 -- "$@"

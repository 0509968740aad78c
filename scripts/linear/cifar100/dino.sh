#!/usr/bin/env bash
# LP-SMALL for DINO on CIFAR-100: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar100/dino.yaml
# Usage: bash scripts/linear/cifar100/dino.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar100/dino "$@"

#!/usr/bin/env bash
# LP-SMALL for SwAV on CIFAR-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar10/swav.yaml
# Usage: bash scripts/linear/cifar10/swav.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar10/swav "$@"

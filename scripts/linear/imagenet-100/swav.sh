#!/usr/bin/env bash
# LP-SOLO for SwAV on ImageNet-100: frozen backbone, SGD lr 0.15, batch 256, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/swav.yaml
# Usage: bash scripts/linear/imagenet-100/swav.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/swav "$@"

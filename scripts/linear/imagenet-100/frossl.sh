#!/usr/bin/env bash
# LP-SOLO for FroSSL on ImageNet-100: frozen backbone, SGD lr 0.4 (0.1 x 1024/256), batch 1024, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/frossl.yaml
# Usage: bash scripts/linear/imagenet-100/frossl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/frossl "$@"

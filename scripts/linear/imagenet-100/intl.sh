#!/usr/bin/env bash
# LP-INTL for INTL on ImageNet-100: frozen backbone, SGD lr 0.2, batch 256, 100 epochs, steps at 60 / 80; plus 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/intl.yaml
# Usage: bash scripts/linear/imagenet-100/intl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/intl "$@"

#!/usr/bin/env bash
# LP-CIM-IN for CorInfoMax on ImageNet: frozen backbone, SGD lr 25, batch 256, 100 epochs, x0.1 every 20 epochs.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/corinfomax.yaml
# Usage: bash scripts/linear/imagenet/corinfomax.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/corinfomax "$@"

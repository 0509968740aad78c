#!/usr/bin/env bash
# LP-FB-BT for Barlow Twins on ImageNet: frozen backbone, SGD lr 0.3, wd 1e-6, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet/barlow_twins.yaml
# Usage: bash scripts/linear/imagenet/barlow_twins.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet/barlow_twins "$@"

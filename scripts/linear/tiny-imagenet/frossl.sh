#!/usr/bin/env bash
# FroSSL's offline probe on Tiny-ImageNet: frozen backbone, SGD lr 0.1, batch 256, 100 epochs, steps at 60 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/tiny-imagenet/frossl.yaml
# Usage: bash scripts/linear/tiny-imagenet/frossl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear tiny-imagenet/frossl "$@"

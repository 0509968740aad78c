#!/usr/bin/env bash
# LP-CIM for CorInfoMax on Tiny-ImageNet: frozen backbone, SGD lr 0.2, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/tiny-imagenet/corinfomax.yaml
# Usage: bash scripts/linear/tiny-imagenet/corinfomax.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear tiny-imagenet/corinfomax "$@"

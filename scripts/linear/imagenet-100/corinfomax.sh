#!/usr/bin/env bash
# LP-CIM for CorInfoMax on ImageNet-100 (ResNet-18): frozen backbone, SGD lr 0.2, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/imagenet-100/corinfomax.yaml
# Usage: bash scripts/linear/imagenet-100/corinfomax.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear imagenet-100/corinfomax "$@"

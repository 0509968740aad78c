#!/usr/bin/env bash
# LP-CIM for CorInfoMax on CIFAR-10: frozen backbone, SGD lr 0.2, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar10/corinfomax.yaml
# Usage: bash scripts/linear/cifar10/corinfomax.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar10/corinfomax "$@"

#!/usr/bin/env bash
# LP-CIM for CorInfoMax on CIFAR-100: frozen backbone, SGD lr 0.2, batch 256, 100 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar100/corinfomax.yaml
# Usage: bash scripts/linear/cifar100/corinfomax.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar100/corinfomax "$@"

#!/usr/bin/env bash
# FroSSL's offline probe on CIFAR-100: frozen backbone, Adam lr 1e-3, batch 256, 100 epochs, steps at 40 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar100/frossl.yaml
# Usage: bash scripts/linear/cifar100/frossl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar100/frossl "$@"

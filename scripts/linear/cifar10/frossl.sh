#!/usr/bin/env bash
# FroSSL's offline probe on CIFAR-10: frozen backbone, Adam lr 1e-3, batch 256, 100 epochs, steps at 40 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/cifar10/frossl.yaml
# Usage: bash scripts/linear/cifar10/frossl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear cifar10/frossl "$@"

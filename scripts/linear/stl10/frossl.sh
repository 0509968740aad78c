#!/usr/bin/env bash
# FroSSL's offline probe on STL-10: frozen backbone, SGD lr 0.01, batch 256, 100 epochs, steps at 40 / 80.
# The protocol, its source and notes: zoo/configs/linear/experiment/stl10/frossl.yaml
# Usage: bash scripts/linear/stl10/frossl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear stl10/frossl "$@"

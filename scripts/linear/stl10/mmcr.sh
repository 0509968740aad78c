#!/usr/bin/env bash
# LP-MMCR for MMCR on STL-10: frozen backbone, Adam lr 0.1, batch 1024, 50 epochs, cosine.
# The protocol, its source and notes: zoo/configs/linear/experiment/stl10/mmcr.yaml
# Usage: bash scripts/linear/stl10/mmcr.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear stl10/mmcr "$@"

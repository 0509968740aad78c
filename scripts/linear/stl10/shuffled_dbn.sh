#!/usr/bin/env bash
# LP-SMALL for Shuffled-DBN on STL-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/stl10/shuffled_dbn.yaml
# Usage: bash scripts/linear/stl10/shuffled_dbn.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear stl10/shuffled_dbn "$@"

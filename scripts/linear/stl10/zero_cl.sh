#!/usr/bin/env bash
# LP-SMALL for Zero-CL on STL-10: linear layer on precomputed features (Adam, 500 epochs) and 5-nn.
# The protocol, its source and notes: zoo/configs/linear/experiment/stl10/zero_cl.yaml
# Usage: bash scripts/linear/stl10/zero_cl.sh --ckpt RUN/checkpoints/last.ckpt [overrides]
exec bash "$(dirname "$0")/../../_launch.sh" linear stl10/zero_cl "$@"

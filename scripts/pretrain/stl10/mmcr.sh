#!/usr/bin/env bash
# MMCR on STL-10: ResNet-50 (3x3 stem, no max-pool), 40 views of batch 32, 500 epochs, Adam (the repository defaults).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/mmcr.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/mmcr "$@"

#!/usr/bin/env bash
# Shuffled-DBN on STL-10 under the W-MSE protocol: ResNet-18, 2 views, 2000 epochs (the CW-RGP code).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/shuffled_dbn.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/shuffled_dbn "$@"

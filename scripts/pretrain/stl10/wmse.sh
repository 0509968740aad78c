#!/usr/bin/env bash
# W-MSE 4 on STL-10: ResNet-18, 4 views, 2000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/wmse.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/wmse "$@"

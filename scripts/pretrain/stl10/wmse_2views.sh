#!/usr/bin/env bash
# W-MSE 2 on STL-10: ResNet-18, 2 views, 2000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/wmse_2views.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/wmse_2views "$@"

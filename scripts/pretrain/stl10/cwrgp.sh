#!/usr/bin/env bash
# CW-RGP 4 on STL-10: ResNet-18, 4 views, 2000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/cwrgp.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/cwrgp "$@"

#!/usr/bin/env bash
# TiCo on ImageNet: ResNet-50, 2 views, 100 epochs, batch 256 (lightly's benchmark of the paper's method).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/tico.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/tico "$@"

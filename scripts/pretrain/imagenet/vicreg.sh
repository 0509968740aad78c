#!/usr/bin/env bash
# VICReg on ImageNet: ResNet-50, 2 views, 1000 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/vicreg.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/vicreg "$@"

#!/usr/bin/env bash
# Barlow Twins on ImageNet: ResNet-50, 2 views, 100 epochs (solo-learn's published config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/barlow_twins_ep100.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/barlow_twins_ep100 "$@"

#!/usr/bin/env bash
# INTL on ImageNet: ResNet-50, 2 views, 800 epochs (the official 2-view recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/intl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/intl "$@"

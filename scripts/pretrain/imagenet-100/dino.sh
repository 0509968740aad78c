#!/usr/bin/env bash
# DINO on ImageNet-100: ResNet-18, 2 views, 400 epochs (solo-learn's published config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/dino.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/dino "$@"

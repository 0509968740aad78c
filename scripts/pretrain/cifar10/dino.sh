#!/usr/bin/env bash
# DINO on CIFAR-10: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/dino.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/dino "$@"

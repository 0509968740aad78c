#!/usr/bin/env bash
# CorInfoMax on CIFAR-10: ResNet-18, 2 views, 1000 epochs, batch 512 (the official command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/corinfomax.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/corinfomax "$@"

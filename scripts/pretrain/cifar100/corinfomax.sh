#!/usr/bin/env bash
# CorInfoMax on CIFAR-100: ResNet-18, 2 views, 1000 epochs, batch 512 (the official command).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar100/corinfomax.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar100/corinfomax "$@"

#!/usr/bin/env bash
# EMP-SSL on ImageNet-100: ResNet-18, 20 patches of batch 100, 2 epochs, LARS-wrapped SGD (the README's ImageNet-100 command).
# The recipe, its source, protocol and paper targets: zoo/configs/experiment/imagenet-100/emp_ssl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/emp_ssl "$@"

#!/usr/bin/env bash
# EMP-SSL on CIFAR-10: ResNet-18 (CIFAR stem), 20 patches of batch 100, 30 epochs, LARS-wrapped SGD (the README's multi-epoch command).
# The recipe, its source, protocol and paper targets: zoo/configs/experiment/cifar10/emp_ssl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/emp_ssl "$@"

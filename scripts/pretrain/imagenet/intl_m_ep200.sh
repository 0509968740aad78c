#!/usr/bin/env bash
# INTL with multi-crop + EMA on ImageNet: ResNet-50, 6 crops, 200 epochs (the official recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/intl_m_ep200.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/intl_m_ep200 "$@"

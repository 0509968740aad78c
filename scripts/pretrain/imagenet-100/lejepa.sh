#!/usr/bin/env bash
# LeJEPA (SIGReg) on ImageNet-100: ResNet-18, 2 global + 6 local crops, AdamW, bf16 (the repository's stated settings).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/lejepa.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/lejepa "$@"

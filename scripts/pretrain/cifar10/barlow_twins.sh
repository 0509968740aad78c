#!/usr/bin/env bash
# Barlow Twins on CIFAR-10: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/cifar/barlow.yaml (recipes.md §2).
# Protocol: solo-learn online probe (summary.json); LP-SMALL offline (scripts/linear/cifar10/barlow_twins.sh).
# Target: 92.10 online top-1 (solo-learn README); LP-SMALL 88.51 / 86.53 top-1 / 5-nn (CW-RGP table copy, other recipe).
# Warmup as solo-learn's scheduler: from its absolute 3e-5, lr(s) = 3e-5 + (lr - 3e-5) s/(W-1)
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=barlow_twins data.name=cifar10 augment=solo_asym_cifar \
  backbone.name=resnet18 backbone.small_stem=true backbone.small_stem_padding=2 backbone.zero_init_residual=false \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=true method.proj_last_bias=true \
  method.lambd=0.0051 method.scale_loss=0.1 \
  optimizer.name=lars optimizer.lr=0.3 optimizer.weight_decay=1e-4 optimizer.lars_eta=0.02 optimizer.lars_clip=true optimizer.exclude_bias_and_norm=true optimizer.probe_lr=0.1 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=endpoints scheduler.warmup_start_lr=3e-5 scheduler.final_factor=0 \
  trainer.max_epochs=1000 trainer.precision=16-mixed trainer.sync_batchnorm=true \
  "${USER_ARGS[@]}"

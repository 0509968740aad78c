#!/usr/bin/env bash
# SimSiam on CIFAR-10: ResNet-18, 2 views, 1000 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/cifar/simsiam.yaml (recipes.md §2).
# Protocol: solo-learn online probe (summary.json); LP-SMALL offline (scripts/linear/cifar10/simsiam.sh).
# Target: 90.51 online top-1 (solo-learn README); LP-SMALL 90.51 / 86.82 top-1 / 5-nn (CW-RGP table copy, other recipe).
# Warmup as solo-learn's scheduler: from its absolute 3e-5, lr(s) = 3e-5 + (lr - 3e-5) s/(W-1); the predictor stays at lr 0.5.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 1 1 "$@"  # global batch 256 = 1 GPU x 256 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=simsiam data.name=cifar10 augment=solo_symw \
  backbone.name=resnet18 backbone.small_stem=true backbone.small_stem_padding=2 backbone.zero_init_residual=false \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=false method.proj_last_bn=true \
  method.pred_hidden=512 method.pred_fixed_lr=true \
  optimizer.name=sgd optimizer.lr=0.5 optimizer.momentum=0.9 optimizer.weight_decay=1e-5 optimizer.exclude_bias_and_norm=false optimizer.probe_lr=0.1 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=endpoints scheduler.warmup_start_lr=3e-5 scheduler.final_factor=0 \
  trainer.max_epochs=1000 trainer.precision=16-mixed trainer.sync_batchnorm=true \
  "${USER_ARGS[@]}"

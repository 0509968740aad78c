#!/usr/bin/env bash
# SimSiam on ImageNet-100: ResNet-18, 2 views, 400 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/imagenet-100/simsiam.yaml (recipes.md §4).
# Protocol: solo-learn online probe (summary.json); LP-SOLO, lr 30.0 (scripts/linear/imagenet-100/simsiam.sh).
# Target: 74.54 online / 78.72 offline top-1 (solo-learn README).
# Asymmetric views: solo-learn's defaults list wins over its dead augmentations_cfg key.
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 2 1 "$@"  # global batch 256 = 2 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=simsiam data.name=imagenet100 data.num_workers=8 augment=solo_asym \
  backbone.name=resnet18 backbone.small_stem=false backbone.zero_init_residual=false \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=false method.proj_last_bn=true \
  method.pred_hidden=512 method.pred_fixed_lr=true \
  optimizer.name=sgd optimizer.lr=0.5 optimizer.momentum=0.9 optimizer.weight_decay=1e-5 optimizer.exclude_bias_and_norm=false optimizer.probe_lr=0.1 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=endpoints scheduler.warmup_start_lr=3e-5 scheduler.final_factor=0 \
  trainer.max_epochs=400 trainer.precision=16-mixed trainer.sync_batchnorm=true \
  "${USER_ARGS[@]}"

#!/usr/bin/env bash
# Barlow Twins on ImageNet-100: ResNet-18, 2 views, 400 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/imagenet-100/barlow.yaml (recipes.md §4).
# Protocol: solo-learn online probe (summary.json); LP-SOLO, lr 0.1 (scripts/linear/imagenet-100/barlow_twins.sh).
# Target: 80.38 online / 80.16 offline top-1 (solo-learn README).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 2 1 "$@"  # global batch 256 = 2 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=barlow_twins data.name=imagenet100 data.num_workers=8 augment=solo_asym \
  backbone.name=resnet18 backbone.small_stem=false backbone.zero_init_residual=false \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=true method.proj_last_bias=true \
  method.lambd=0.0051 method.scale_loss=0.1 \
  optimizer.name=lars optimizer.lr=0.3 optimizer.weight_decay=1e-4 optimizer.lars_eta=0.02 optimizer.lars_clip=true optimizer.exclude_bias_and_norm=true optimizer.probe_lr=0.1 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=endpoints scheduler.warmup_start_lr=3e-5 scheduler.final_factor=0 \
  trainer.max_epochs=400 trainer.precision=16-mixed trainer.sync_batchnorm=true \
  "${USER_ARGS[@]}"

#!/usr/bin/env bash
# Barlow Twins on ImageNet: ResNet-50, 2 views, 100 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/imagenet/barlow.yaml (recipes.md §5.2).
# Protocol: solo-learn online probe (summary.json); LP-SOLO, lr 0.3, wd 1e-5 (scripts/linear/imagenet/barlow_twins_ep100.sh).
# Target: 67.18 online / 67.23 offline top-1 (solo-learn README).
# Warmup as solo-learn's scheduler: from its absolute 3e-5, lr(s) = 3e-5 + (lr - 3e-5) s/(W-1)
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 4 1 "$@"  # global batch 256 = 4 GPUs x 64 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=barlow_twins data.name=imagenet data.num_workers=8 augment=solo_asym \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=false \
  'method.proj_hidden=[4096,4096]' method.proj_out=4096 method.proj_hidden_bias=true method.proj_last_bias=true \
  method.lambd=0.0051 method.scale_loss=0.048 method.per_device_norm=true \
  optimizer.name=lars optimizer.lr=0.8 optimizer.weight_decay=1.5e-6 optimizer.lars_eta=0.001 optimizer.lars_clip=false optimizer.exclude_bias_and_norm=true optimizer.probe_lr=0.1 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=endpoints scheduler.warmup_start_lr=3e-5 scheduler.final_factor=0 \
  trainer.max_epochs=100 trainer.precision=16-mixed trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"

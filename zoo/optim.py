"""The optimisers pretraining builds (`make_optimizer`), the LARS variants torch and timm lack, and the lr
schedule (`lr_factor_schedule`, `batch_scaled`).

Three LARS variants, each the formula of the code a recipe follows (optimizer.name):
  lars         solo-learn's solo/utils/lars.py, which is timm's `Lars`: trust ratio eta ||w|| / (||g|| + wd ||w|| + eps),
               optionally clipped to the lr (lars_clip, LARC-style); apex LARC (the official SwAV) computes the same.
  lars_fb      facebookresearch/barlowtwins main.py and facebookresearch/vicreg main_vicreg.py, copied by ThomasYerxa/mmcr
               (mmcr/imagenet/misc.py), and the official BYOL's optax chain (byol/utils/optimizers.py): the weight decay
               joins the gradient first, then eta ||w|| / ||g + wd w||, never clipped; lr applied after the momentum.
  lars_google  google-research/simclr lars_optimizer.py (classic_momentum): lars_fb's trust ratio, with the lr inside
               the momentum buffer (v <- m v + lr trust u; w <- w - v), so a changing lr weighs each step by its own lr.
All keep the zoo's parameter groups: a group adapts when `always_adapt` (timm's key: the 1-D parameters under
exclude_bias_and_norm do not, as the sources' filters), with its own weight decay (0 for those).
"""

import math

import torch

from zoo.config import check_optimizer
from zoo.names import UNCLIPPED_LARS as UNCLIPPED_LARS_NAMES
from zoo.names import Schedule, ScheduleInterval, WarmupRule


class FBLars(torch.optim.Optimizer):
    """LARS as facebookresearch/barlowtwins and facebookresearch/vicreg write it: per parameter, u = g + wd w, scaled
    by the trust ratio eta ||w|| / ||u|| (1 where either norm is 0) in groups with `always_adapt`, into a heavy-ball
    buffer mu <- momentum mu + u (created at the parameter's first gradient), and w <- w - lr mu.
    `GoogleLars` puts the lr inside the buffer instead."""

    classic_momentum = False  # google-research/simclr's flag of that name: mu <- momentum mu + lr u, and w <- w - mu

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0, trust_coeff=0.001, always_adapt=True):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "trust_coeff": trust_coeff,
                    "always_adapt": always_adapt}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                update = param.grad.add(param, alpha=group["weight_decay"])
                if group["always_adapt"]:
                    param_norm, update_norm = torch.linalg.vector_norm(param), torch.linalg.vector_norm(update)
                    one = torch.ones_like(param_norm)
                    trust = torch.where(param_norm > 0, torch.where(update_norm > 0, group["trust_coeff"] * param_norm / update_norm, one), one)
                    update = update.mul(trust)
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param)
                buffer = state["momentum_buffer"]
                if self.classic_momentum:
                    buffer.mul_(group["momentum"]).add_(update, alpha=group["lr"])
                    param.sub_(buffer)
                else:
                    buffer.mul_(group["momentum"]).add_(update)
                    param.add_(buffer, alpha=-group["lr"])
        return loss


class GoogleLars(FBLars):
    """LARS as google-research/simclr lars_optimizer.py writes it (classic_momentum, its default): FBLars' trust
    ratio, with the lr in the buffer, mu <- momentum mu + lr u and w <- w - mu (the same steps at a constant lr)."""

    classic_momentum = True


# The LARS variants without clipping, by optimizer.name.
UNCLIPPED_LARS = dict(zip(UNCLIPPED_LARS_NAMES, (FBLars, GoogleLars)))  # name -> class


def make_optimizer(opt, groups, lr, fused_sgd=False, fused=False):
    """The optimiser `opt` (an OptimizerConfig) names, over the zoo's parameter groups (`zoo.train.harness.Pretrainer.param_groups`)."""
    check_optimizer(opt)
    if opt.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=opt.momentum, fused=fused_sgd)
    if opt.name == "lars":
        from timm.optim import Lars

        return Lars(groups, lr=lr, momentum=opt.momentum, trust_coeff=opt.lars_eta, trust_clip=opt.lars_clip)
    if opt.name in UNCLIPPED_LARS:
        return UNCLIPPED_LARS[opt.name](groups, lr=lr, momentum=opt.momentum, trust_coeff=opt.lars_eta)
    cls = torch.optim.Adam if opt.name == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=tuple(opt.betas), fused=fused)


def batch_scaled(lr, scale_lr, global_batch_size):
    """The lr applied: `lr` x global batch / 256 when `scale_lr` (the linear scaling rule), else `lr`."""
    return lr * (global_batch_size / 256 if scale_lr else 1.0)


WARMUP_RULES = {  # scheduler.warmup_rule
    WarmupRule.next: lambda step, warmup: (step + 1) / warmup,
    WarmupRule.from_zero: lambda step, warmup: step / warmup,
    WarmupRule.endpoints: lambda step, warmup: step / max(warmup - 1, 1),
}


def lr_factor_schedule(cfg, steps_per_epoch, total_steps, base_lr=1.0):
    """Per-step lr multiplier: linear warmup, then cosine / step / constant.

    A LambdaLR factor rather than timm's schedulers: it keeps each parameter
    group's own lr ratio (probe, biases) and lets fixed-lr groups opt out.
    `base_lr` is the group's lr, for the absolute `warmup_start_lr`.
    """
    warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else round(cfg.warmup_epochs * steps_per_epoch)
    total = max(int(total_steps), 1)
    warmup_fraction = WARMUP_RULES[cfg.warmup_rule]

    def factor(step):
        if step < warmup:
            start = cfg.warmup_start_lr / base_lr if base_lr else 0.0
            return start + (1 - start) * warmup_fraction(step, warmup)
        if cfg.name == Schedule.constant:
            return 1.0
        if cfg.name == Schedule.step:
            epoch = step // steps_per_epoch
            return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        if cfg.interval == ScheduleInterval.epoch:  # per-epoch cosine (SimSiam, CW-RGP ImageNet)
            progress = (step // steps_per_epoch) / max(total // steps_per_epoch, 1)
        else:
            progress = (step - warmup) / max(total - warmup, 1)
        progress = min(progress, 1.0)
        return cfg.final_factor + (1 - cfg.final_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor

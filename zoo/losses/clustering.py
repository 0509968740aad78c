"""The clustering baselines' losses: SwAV (swapped prediction of Sinkhorn-Knopp codes) and DINO
(self-distillation from a centred, sharpened teacher).

Prototype scores or logits of shape (N, K) in, one tensor per crop in crop order, the crops with targets
(codes, teacher outputs) first; a scalar out. The conventions of `zoo.losses`: float32 maths also inside
autocast, and under torch.distributed every rank passes its local batch and gets the loss of the global
batch, its input gradient world_size x the single-process one (see `zoo.spectral.gather`). The
cross-rank statistics (Sinkhorn's prototype sums, DINO's centre) cover the global batch, so the codes
and centre of every rank are those one process computes on the whole batch.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ZooError
from zoo.losses.shared import check_views, global_mean, mean_over_ranks
from zoo.spectral import float32_math, upcast, world_size

__all__ = ["dino_center", "dino_loss", "sinkhorn_knopp", "swav_loss"]


@torch.no_grad()
@float32_math
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iters: int = 3) -> Tensor:
    """SwAV's codes (Caron et al., 2020): soft assignments of the samples to K prototypes that spread the
    global batch evenly over the prototypes, by ``iters`` Sinkhorn-Knopp iterations.

    ``scores`` (n, K) are this rank's rows (its samples, and its share of a queue). Starting from
    Q = exp(scores / epsilon), each iteration rescales every prototype's column to the same total over
    the rows of every rank (the sums all-reduced), then every row to sum to 1; the result, (n, K) without
    gradient, has rows summing to 1. facebookresearch/swav main_swav.py ``distributed_sinkhorn`` and
    vturrisi/solo-learn solo/utils/sinkhorn_knopp.py, whose K x B form and constant factors (the total,
    1/K, 1/B) cancel in these normalisations.
    """
    if scores.ndim != 2:
        raise ZooError(f"sinkhorn_knopp needs (N, K) scores, got {tuple(scores.shape)}; one row per sample")
    if epsilon <= 0 or iters < 1:
        raise ZooError(f"sinkhorn_knopp needs epsilon > 0 and iters >= 1, got {epsilon} and {iters}; e.g. 0.05 and 3")
    codes = torch.exp(scores / epsilon)
    for _ in range(iters):
        codes = codes / (mean_over_ranks(codes.sum(dim=0)) * world_size())  # each prototype's global mass
        codes = codes / codes.sum(dim=1, keepdim=True)  # each sample's assignment sums to 1
    return codes


def _cross_entropy_to_other_crops(targets: Tensor, log_probs: Tensor) -> Tensor:
    """-sum_k targets[t]_ik log_probs[v]_ik averaged over every pair (t, v != t), per sample:
    (T, n, K) and (V, n, K) -> (n,)."""
    cross = -torch.einsum("tnk,vnk->tvn", targets, log_probs)
    other = ~torch.eye(*cross.shape[:2], dtype=torch.bool, device=cross.device)
    return cross[other].mean(dim=0)


def _stacked(tensors: Sequence[Tensor]) -> Tensor:
    """(T, n, K) of T tensors (n, K), half precision upcast (float32_math upcasts positional tensors only)."""
    return torch.stack([upcast(t) for t in tensors])


def _check_targets(targets: Sequence[Tensor], crops: tuple[Tensor, ...], loss: str, what: str) -> None:
    check_views(crops, loss)
    if not 1 <= len(targets) <= len(crops) or any(t.shape != crops[0].shape for t in targets):
        raise ZooError(
            f"{loss} needs 1 to {len(crops)} {what} of the first crops, each {tuple(crops[0].shape)}, "
            f"got {[tuple(t.shape) for t in targets]}; put the crops with {what} first"
        )


@float32_math
def swav_loss(*scores: Tensor, codes: Sequence[Tensor], temperature: float = 0.1) -> Tensor:
    """SwAV (Caron et al., 2020): swapped prediction, every crop predicting the codes of every other crop
    that has codes.

    ``scores``, one (n, K) tensor per crop, are the crops' prototype scores (their L2-normalised embedding
    against the unit prototypes); ``codes[c]`` are the Sinkhorn codes (`sinkhorn_knopp`) of crop c, for
    the first len(codes) crops (the global ones), treated as constants. With P the pairs (c, v), v != c::

        L = 1/|P| sum_{(c,v) in P} -mean_i sum_k codes[c]_ik log softmax(scores[v]_i / temperature)_k

    facebookresearch/swav main_swav.py ``train``; vturrisi/solo-learn solo/losses/swav.py ``swav_loss_func``.
    """
    _check_targets(codes, scores, "swav_loss", "codes")
    if temperature <= 0:
        raise ZooError(f"swav_loss needs temperature > 0, got {temperature}; pass e.g. temperature=0.1")
    log_probs = F.log_softmax(torch.stack(scores) / temperature, dim=-1)
    return global_mean(_cross_entropy_to_other_crops(_stacked(codes).detach(), log_probs))


@float32_math
def dino_loss(
    *student: Tensor,
    teacher: Sequence[Tensor],
    center: Tensor,
    teacher_temperature: float = 0.04,
    student_temperature: float = 0.1,
) -> Tensor:
    """DINO (Caron et al., 2021): the student's distribution over the prototypes for every crop matches
    the teacher's centred and sharpened distribution for every other crop the teacher sees.

    ``student``, one (n, K) tensor per crop, are the student's logits; ``teacher[t]`` the teacher's logits
    of crop t, for the first len(teacher) crops (the global ones), treated as constants; ``center`` (1, K)
    the running centre of the teacher's logits (`dino_center`). With P the pairs (t, v), v != t::

        L = 1/|P| sum_{(t,v) in P} -mean_i sum_k softmax((teacher[t]_i - center) / teacher_temperature)_k
                                                  log softmax(student[v]_i / student_temperature)_k

    facebookresearch/dino main_dino.py ``DINOLoss.forward``; vturrisi/solo-learn solo/losses/dino.py.
    """
    _check_targets(teacher, student, "dino_loss", "teacher outputs")
    if teacher_temperature <= 0 or student_temperature <= 0:
        raise ZooError(
            f"dino_loss needs temperatures > 0, got teacher {teacher_temperature} and student {student_temperature}"
        )
    targets = F.softmax((_stacked(teacher).detach() - upcast(center)) / teacher_temperature, dim=-1)
    log_probs = F.log_softmax(torch.stack(student) / student_temperature, dim=-1)
    return global_mean(_cross_entropy_to_other_crops(targets, log_probs))


@torch.no_grad()
@float32_math
def dino_center(*teacher: Tensor, center: Tensor, momentum: float = 0.9) -> Tensor:
    """DINO's centre after a step: ``momentum center + (1 - momentum) mean``, the mean of the teacher's
    logits over every crop of the global batch (all-reduced). facebookresearch/dino main_dino.py
    ``DINOLoss.update_center``."""
    batch_center = mean_over_ranks(torch.cat(teacher).mean(dim=0, keepdim=True))
    return upcast(center) * momentum + batch_center * (1 - momentum)

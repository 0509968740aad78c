"""The instance-discrimination and bootstrap baselines' losses: SimCLR, MoCo, BYOL.

Projector (or predictor) outputs of shape (N, D) in, a scalar out, as the other
losses of `zoo.losses`, with their conventions: float32 maths also inside
autocast, and under torch.distributed every rank passes its local batch and
gets the loss of the global batch (negatives drawn from every rank), its
input gradient world_size x the single-process one, which DDP's gradient mean
turns into exactly the single-process parameter gradient (see
`zoo.spectral.gather`). The official per-rank losses average to the same value
and the same parameter gradient.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ZooError
from zoo.losses.shared import check_views, global_mean
from zoo.spectral import float32_math, gather, is_distributed

__all__ = ["byol_loss", "dcl_loss", "info_nce_loss", "nt_xent_loss"]


def _rank() -> int:
    return dist.get_rank() if is_distributed() else 0


@float32_math
def nt_xent_loss(*views: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR (Chen et al., 2020): NT-Xent, the normalised-temperature cross-entropy.

    With z the L2-normalised views, s(a, b) = z_a . z_b / temperature, every
    crop (v, i) of the global batch an anchor, its positives P the other views
    of sample i and its negatives every crop of another sample::

        L = -mean_{v,i} log( sum_{p in P} e^s((v,i), p) / sum_{c != (v,i)} e^s((v,i), c) )

    Two views: the usual 2N-way softmax with one positive. More views (multi-crop)
    sum the positives inside the log. vturrisi/solo-learn solo/losses/simclr.py
    ``simclr_loss_func`` (positives by sample, the anchor itself excluded); for two views
    also htdt/self-supervised methods/contrastive.py ``contrastive_loss``.
    """
    check_views(views, "nt_xent_loss")
    if temperature <= 0:
        raise ZooError(f"nt_xent_loss needs temperature > 0, got {temperature}; pass e.g. temperature=0.2")
    anchors = F.normalize(torch.stack(views), dim=-1)  # (V, n, D) this rank's crops
    candidates = gather(anchors, dim=1)  # (V, N, D) every rank's crops
    n_views, n_local = anchors.shape[:2]
    logits = torch.einsum("vid,wjd->viwj", anchors, candidates) / temperature  # (V, n, V, N)
    global_index = torch.arange(n_local, device=anchors.device) + _rank() * n_local
    same_sample = global_index[:, None] == torch.arange(candidates.shape[1], device=anchors.device)  # (n, N)
    same_view = torch.eye(n_views, dtype=torch.bool, device=anchors.device)  # (V, V)
    itself = same_view[:, None, :, None] & same_sample[None, :, None, :]
    positive = ~same_view[:, None, :, None] & same_sample[None, :, None, :]
    logits = logits.masked_fill(itself, float("-inf")).flatten(2)  # (V, n, V N): the anchor is no candidate
    log_positive = logits.masked_fill(~positive.flatten(2), float("-inf")).logsumexp(dim=-1)
    return global_mean((logits.logsumexp(dim=-1) - log_positive).flatten())  # -log(pos / all), per crop


@float32_math
def dcl_loss(z1: Tensor, z2: Tensor, temperature: float = 0.1, sigma: float | None = None) -> Tensor:
    """Decoupled contrastive learning (Yeh et al., ECCV 2022): InfoNCE without the positive pair in the
    denominator, averaged over both directions.

    With z the L2-normalised views, s(a, b) = a . b / temperature and N the global batch, for each anchor
    z^k_i (view k, sample i; l the other view)::

        L^k_i = -w_i s(z^k_i, z^l_i) + log sum_{v in {k, l}} sum_{j != i} exp s(z^k_i, z^v_j)
        L     = 1/2 sum_k mean_i L^k_i

    w_i = 1 (DCL), or with ``sigma`` the negative von Mises-Fisher weight of DCLW,
    w_i = 2 - N softmax_i(z^1_i . z^2_i / sigma) = 2 - exp(z^1_i . z^2_i / sigma) / mean_j exp(z^1_j . z^2_j / sigma),
    a constant in the backward (detached) and the softmax over the global batch.

    The authors published no code. The numbers are lightly-ai/lightly's lightly/loss/dcl_loss.py
    (``DCLLoss``, ``DCLWLoss``; the paper's eq. 6 with its weighting function), which this equals on one
    process. raminnakhli/Decoupled-Contrastive-Learning loss/dcl.py, which lightly's follows, sums the
    two directions (2 x this value) and lets DCLW's weight carry gradient. Under torch.distributed the
    negatives (and DCLW's softmax) cover the global batch; lightly's DCLW normalises its weights over each
    rank's own batch instead.
    """
    check_views((z1, z2), "dcl_loss")
    if temperature <= 0 or (sigma is not None and sigma <= 0):
        raise ZooError(f"dcl_loss needs temperature > 0 and sigma > 0 (or None), got {temperature} and {sigma}")
    anchors = F.normalize(torch.stack([z1, z2]), dim=-1)  # (2, n, D) this rank's crops
    candidates = gather(anchors, dim=1)  # (2, N, D) every rank's crops
    n_local, n_global = anchors.shape[1], candidates.shape[1]
    own = torch.arange(n_local, device=anchors.device) + _rank() * n_local  # each anchor's global index
    positive = (anchors[0] * anchors[1]).sum(dim=-1) / temperature  # (n,), the same for both directions
    if sigma is not None:
        agreement = gather((anchors[0] * anchors[1]).sum(dim=-1).detach() / sigma)  # (N,)
        positive = positive * (2 - n_global * agreement.softmax(dim=0)[own])
    logits = torch.einsum("kid,vjd->kivj", anchors, candidates) / temperature  # (2, n, 2, N)
    same_sample = own[:, None] == torch.arange(n_global, device=anchors.device)  # (n, N)
    logits = logits.masked_fill(same_sample[None, :, None, :], float("-inf")).flatten(2)  # neither view of i
    return global_mean((logits.logsumexp(dim=-1) - positive).flatten())


@float32_math
def info_nce_loss(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.1) -> Tensor:
    """MoCo's InfoNCE (He et al., 2020): each query against its key and a queue of past keys.

    With q_i, k_i and the queue's rows u_j as given (the method L2-normalises them)::

        L = mean_i CE([q_i . k_i, q_i . u_1, ..., q_i . u_K] / temperature, class 0)

    ``queue`` is (K, D), one past key per row, and carries no gradient in training.
    facebookresearch/moco moco/builder.py ``MoCo.forward``; vturrisi/solo-learn
    solo/losses/mocov2plus.py ``mocov2plus_loss_func`` (its queue laid out (D, K)).
    """
    check_views((query, key), "info_nce_loss")
    if queue.ndim != 2 or queue.shape[1] != query.shape[1]:
        raise ZooError(f"info_nce_loss needs a (K, {query.shape[1]}) queue, got {tuple(queue.shape)}; one key per row")
    positive = (query * key).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, query @ queue.T], dim=1) / temperature
    return global_mean(logits.logsumexp(dim=1) - logits[:, 0])


@float32_math
def byol_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL (Grill et al., 2020): ``2 - 2 mean_i cos(p_i, sg t_i)``, the normalised MSE of the
    online prediction to the stop-gradient target projection, for one (prediction, target) pair.

    vturrisi/solo-learn solo/losses/byol.py ``byol_loss_func``; htdt/self-supervised methods/byol.py.
    """
    check_views((prediction, target), "byol_loss")
    return 2 - 2 * global_mean(F.cosine_similarity(prediction, target.detach(), dim=-1))

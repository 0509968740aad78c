"""k-nearest-neighbour classification of features against a labelled bank."""

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(bank, bank_labels, queries, num_classes, k=20, temperature=0.07, distance="cosine", chunk=1024):
    """Class scores (Q, C) for `queries` from their k nearest bank entries.

    cosine: votes weighted by exp(similarity / temperature) (Wu et al. 2018, as
    solo-learn and DINO); euclidean: plain majority vote of the k nearest (the
    W-MSE protocol's 5-nn). A tie in the vote count goes to the smallest label, as
    the official protocol's `unique(return_counts=True)` + argmax does: each class's
    count is lowered by label / (2 C), less than one vote, so the scores rank the same
    under topk and argmax.
    """
    bank, queries = bank.float(), queries.float()
    if distance == "cosine":
        bank, queries = F.normalize(bank, dim=1), F.normalize(queries, dim=1)
    elif distance != "euclidean":
        raise ValueError(f"distance must be cosine or euclidean, not {distance}")
    k = min(k, len(bank))
    scores = []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        if distance == "cosine":
            similarity, index = (q @ bank.T).topk(k, dim=1)
            weights = (similarity / temperature).exp()
        else:
            _, index = torch.cdist(q, bank).topk(k, dim=1, largest=False)
            weights = torch.ones_like(index, dtype=torch.float32)
        votes = torch.zeros(len(q), num_classes, device=q.device)
        votes.scatter_add_(1, bank_labels[index], weights)
        if distance == "euclidean":
            votes -= torch.arange(num_classes, device=q.device) / (2 * num_classes)
        scores.append(votes)
    return torch.cat(scores)


def topk_accuracy(scores, labels, topk=(1,)):
    """Fractions of `labels` within the top-k of `scores`, one per k."""
    ranked = scores.topk(max(topk), dim=1).indices
    hits = ranked == labels.unsqueeze(1)
    return [hits[:, :k].any(dim=1).float().mean().item() for k in topk]

"""k-nearest-neighbour classification of features against a labelled bank: the vote, the
LP-SMALL k-NN of main_linear.py and main_knn.py's sweep over k, temperature and distance."""

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(bank, bank_labels, queries, num_classes, k=20, temperature=0.07, distance="cosine", chunk=1024):
    """Class scores (Q, C) for `queries` from their k nearest bank entries.

    cosine: votes weighted by exp(similarity / temperature) (Wu et al. 2018, as
    solo-learn and DINO), computed as exp((similarity - the query's largest) / temperature):
    the same ranking of classes, but finite at any temperature, where exp(1 / 0.01) overflows
    float32 and ties every class at inf; euclidean: plain majority vote of the k nearest (the
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
            weights = ((similarity - similarity[:, :1]) / temperature).exp()  # topk sorts: column 0 is the largest
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


DISTANCES = ("cosine", "euclidean")


def knn_result(features, k):
    """The LP-SMALL k-NN (Euclidean, majority vote) of `LabelledFeatures`' first kind of features:
    {"knn<k>_top1": accuracy}, or {} for k <= 0."""
    if k <= 0:
        return {}
    scores = knn_predict(features.train[0], features.train_labels, features.val[0], features.num_classes, k=k,
                         distance="euclidean")
    return {f"knn{k}_top1": topk_accuracy(scores, features.val_labels)[0]}


def sweep(features, kinds, ks, temperatures, distances):
    """One result dict per (kind of features, distance, k, T) of `LabelledFeatures`, its kinds
    named by `kinds`. Cosine votes are weighted by exp(similarity / T); Euclidean votes are a
    plain majority, so T does not apply to them (None)."""
    top = (1, min(5, features.num_classes))
    results = []
    for name, bank, queries in zip(kinds, features.train, features.val):
        for distance in distances:
            for temperature in temperatures if distance == "cosine" else [None]:
                for k in ks:
                    scores = knn_predict(bank, features.train_labels, queries, features.num_classes, k=k,
                                         temperature=temperature or 1.0, distance=distance)
                    top1, top5 = topk_accuracy(scores, features.val_labels, top)
                    results.append({"features": name, "distance": distance, "k": k, "temperature": temperature,
                                    "top1": top1, "top5": top5})
    return results


def markdown_table(results, ks):
    """Rows: features, distance, T; columns: k; cells: top-1 in %."""
    rows = {}
    for r in results:
        rows.setdefault((r["features"], r["distance"], r["temperature"]), {})[r["k"]] = r["top1"]
    lines = ["| features | distance | T | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|---|---|" + "---:|" * len(ks)]
    for (name, distance, temperature), by_k in rows.items():
        cells = " | ".join(f"{100 * by_k[k]:.2f}" for k in ks)
        lines.append(f"| {name} | {distance} | {'-' if temperature is None else f'{temperature:g}'} | {cells} |")
    return "\n".join(lines)

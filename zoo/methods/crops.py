"""Which crops a method's target branch encodes and which the online branch predicts them from."""


def target_pairs(crop_sizes):
    """Multi-crop pairing of an EMA-target method: every (target crop, online crop) pair of two different
    crops, the target crops being those of the largest size; two crops give [(0, 1), (1, 0)].
    vturrisi/solo-learn solo/methods/byol.py (its large crops as targets, every other crop online)."""
    largest = max(crop_sizes)
    return [(t, v) for t, size in enumerate(crop_sizes) if size == largest for v in range(len(crop_sizes)) if v != t]


def targets_first(crop_sizes):
    """(crop indices with the target crops first, number of target crops): the target crops are those of the
    largest size, as in `target_pairs`, in crop order, then the other crops; the order of SwAV's and DINO's
    losses, whose targets (codes, teacher outputs) belong to their first crops. (16, 8, 16) gives ([0, 2, 1], 2)."""
    largest = max(crop_sizes)
    targets = [i for i, size in enumerate(crop_sizes) if size == largest]
    return targets + [i for i, size in enumerate(crop_sizes) if size != largest], len(targets)

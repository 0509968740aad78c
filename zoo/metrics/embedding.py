"""A 2-D picture of validation features coloured by class (`embedding.png`): scikit-learn's t-SNE
(after a PCA to 50 dimensions, its usual preparation) or PCA alone, on a seeded random subset of at
most `max_points` features."""

import io

import numpy as np
import torch

from zoo.atomic import atomic_write_bytes

PROJECTIONS = ("tsne", "pca")
MAX_POINTS = 2000  # t-SNE of 2,000 points takes seconds on a CPU; more only crowds the picture
PCA_BEFORE_TSNE = 50
# Up to this many points the exact t-SNE gradient (O(N^2) in numpy) is the cheaper one: scikit-learn's
# Barnes-Hut took 3-4x as long on the 450 digits (2-core AMD EPYC, loaded: 28 s against 8 s).
EXACT_TSNE_MAX_POINTS = 1000
# Half scikit-learn's 1,000 iterations (its first 250 are the early exaggeration): the 450 digits' picture is
# the same to the eye and t-SNE takes 3.7 s instead of 7.7 s (2-core AMD EPYC), 2% of the default run.
TSNE_ITERATIONS = 500


def subsample(features, labels, max_points=MAX_POINTS, seed=0):
    """A seeded random subset of at most `max_points` rows (validation sets are often ordered by class)
    with finite features, as float64 numpy arrays / integer labels."""
    features, labels = torch.as_tensor(features).detach().float().cpu(), torch.as_tensor(labels).detach().cpu()
    finite = torch.isfinite(features).all(dim=1)
    features, labels = features[finite], labels[finite]
    if len(features) > max_points:
        keep = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:max_points].sort().values
        features, labels = features[keep], labels[keep]
    return features.double().numpy(), labels.numpy()


def project_2d(features, projection="tsne", seed=0):
    """(N, D) numpy features -> (N, 2) coordinates."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, not {projection}")
    if projection == "pca" or len(features) < 4:  # t-SNE needs a perplexity below the point count
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    reduced = PCA(n_components=min(PCA_BEFORE_TSNE, *features.shape), random_state=seed).fit_transform(features)
    perplexity = min(30.0, (len(features) - 1) / 3)
    method = "exact" if len(features) <= EXACT_TSNE_MAX_POINTS else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", method=method, max_iter=TSNE_ITERATIONS, random_state=seed)
    return tsne.fit_transform(reduced)


def plot_embedding(features, labels, path, title, projection="tsne", max_points=MAX_POINTS, seed=0):
    """Write the 2-D embedding of (N, D) `features` coloured by `labels` to `path` (PNG, atomically);
    return the number of points drawn (0: nothing to draw, no file written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features, labels = subsample(features, labels, max_points, seed)
    if len(features) < 2:
        return 0
    coordinates = project_2d(features, projection, seed)
    classes = np.unique(labels)
    fig, ax = plt.subplots(figsize=(6, 6))
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "turbo")
    colour_of = {label: colours(i if len(classes) <= 20 else i / max(len(classes) - 1, 1)) for i, label in enumerate(classes)}
    ax.scatter(coordinates[:, 0], coordinates[:, 1], c=[colour_of[label] for label in labels], s=6, linewidths=0)
    if len(classes) <= 20:  # a legend of hundreds of classes would cover the picture
        for label in classes:
            ax.scatter([], [], color=colour_of[label], s=20, label=str(label))
        ax.legend(fontsize=7, markerscale=1, loc="best", title="class", title_fontsize=7)
    ax.set_title(f"{title}\n{'t-SNE' if projection == 'tsne' else 'PCA'} of {len(features)} validation features", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return len(features)

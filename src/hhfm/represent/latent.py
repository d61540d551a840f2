"""Latent maps of jet embeddings: a 2-D t-SNE (scikit-learn) and the AUC of every embedding dimension."""

from __future__ import annotations

import numpy as np

from hhfm.metrics import auc


def tsne_map(embedding: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE of (n, D) embeddings (PCA initialisation, seeded) -> (n, 2)."""
    from sklearn.manifold import TSNE

    x = np.asarray(embedding, np.float64)
    perplexity = min(perplexity, (len(x) - 1) / 3.0)  # scikit-learn requires perplexity < n
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def dimension_aucs(embedding: np.ndarray, label: np.ndarray) -> np.ndarray:
    """AUC of each embedding dimension alone (D,) for label 1 vs 0 (rows with other labels are ignored)."""
    sel = (label == 0) | (label == 1)
    if len(np.unique(label[sel])) < 2:
        return np.full(embedding.shape[1], np.nan)
    return np.array([auc(embedding[sel, d], label[sel]) for d in range(embedding.shape[1])])

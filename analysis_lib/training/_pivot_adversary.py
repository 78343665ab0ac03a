"""Adversary networks of the pivot method: a Gaussian mixture density network and a classifier.

Both take the classifier output ``f(x)`` (shape (n, 1)) and model ``p(z | f(x))``; ``nll``
gives the per-event negative log-likelihood of the nuisance ``z`` and ``compute_loss`` its
weighted mean, so a plain ``fit(scores, z)`` re-trains an adversary on a frozen classifier.
Keras is imported lazily (the classes are built on first use).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@functools.cache
def adversary_classes() -> dict[str, type]:
    """``{"gaussian_mixture": GaussianMixtureAdversary, "categorical": CategoricalAdversary}``."""
    import keras
    import tensorflow as tf

    class _Adversary(keras.Model):
        def __init__(self, hidden_units: Sequence[int], n_out: int, **kwargs):
            super().__init__(**kwargs)
            # tanh, not ReLU: the classifier could push its outputs where every ReLU unit of
            # the adversary is off, and the adversary would never recover (no gradient)
            self.hidden = [keras.layers.Dense(int(u), activation="tanh") for u in hidden_units]
            self.head = keras.layers.Dense(n_out)

        def call(self, s, training=False):
            h = s
            for layer in self.hidden:
                h = layer(h)
            return self.head(h)

        def mean_nll(self, out, z, sample_weight=None):
            nll = self.nll(out, z)
            if sample_weight is None:
                return tf.reduce_mean(nll)
            w = tf.reshape(tf.cast(sample_weight, nll.dtype), [-1])
            return tf.reduce_sum(w * nll) / (tf.reduce_sum(w) + 1e-12)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return self.mean_nll(y_pred, y, sample_weight)

    class GaussianMixtureAdversary(_Adversary):
        """Mixture density network: ``p(z | s) = sum_k pi_k(s) N(z; mu_k(s), sigma_k(s))``."""

        def __init__(self, hidden_units: Sequence[int], n_components: int, **kwargs):
            super().__init__(hidden_units, 3 * int(n_components), **kwargs)
            self.n_components = int(n_components)

        def nll(self, out, z):
            k = self.n_components
            logits, mu, log_sigma = out[:, :k], out[:, k : 2 * k], out[:, 2 * k :]
            log_sigma = tf.clip_by_value(log_sigma, -7.0, 7.0)
            z = tf.reshape(tf.cast(z, out.dtype), [-1, 1])
            log_n = -0.5 * tf.square((z - mu) * tf.exp(-log_sigma)) - log_sigma - _HALF_LOG_2PI
            log_mix = tf.nn.log_softmax(logits, axis=-1) + log_n
            return -tf.reduce_logsumexp(log_mix, axis=-1)

    class CategoricalAdversary(_Adversary):
        """Classifier of the nuisance class ``z`` (integers ``0 .. n_classes - 1``)."""

        def __init__(self, hidden_units: Sequence[int], n_classes: int, **kwargs):
            super().__init__(hidden_units, int(n_classes), **kwargs)

        def nll(self, out, z):
            z = tf.cast(tf.reshape(z, [-1]), tf.int32)
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=z, logits=out)

    return {"gaussian_mixture": GaussianMixtureAdversary, "categorical": CategoricalAdversary}


def make_adversary(kind: str, hidden_units: Sequence[int], n_out: int):
    """A built adversary of ``kind`` with ``n_out`` components (mixture) or classes."""
    import numpy as np

    model = adversary_classes()[kind](hidden_units, n_out)
    model(np.zeros((1, 1), np.float32))
    return model

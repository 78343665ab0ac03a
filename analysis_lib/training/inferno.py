"""Inference-aware training: INFERNO (de Castro and Dorigo, arXiv:1806.04743).

A network with a softmax over ``n_bins`` outputs defines a (soft) histogram of the data.
Each training step builds, from the batch, the expected counts per bin
``nu_k = s * t^s_k + b * t^b_k(theta)`` of the Asimov data set (signal template ``t^s``, the
background template ``t^b`` at the nuisance values ``theta``, obtained by moving the
background events of the batch with :class:`~analysis_lib.training.asimov.Nuisance`
transformations inside the graph), differentiates them with respect to ``(s, theta)`` by
automatic differentiation (forward-mode accumulators nested in the weights' gradient tape),
forms the Fisher information ``J diag(1/nu) J^T`` (the Hessian of the Asimov negative
log-likelihood at the true values) plus the constraint terms, and minimises the expected
variance of ``s``, ``(I^-1)_ss``, with every nuisance profiled. Systematic variation tables
(``fit(..., variations={name: (X_up, X_down)})``, the same events at +-1 sigma) add nuisances
that move every event, signal and background, along its own ``(x_up - x_down) / 2``. The
softmax temperature makes the soft histogram close to the hard one used for inference
(``predict``: argmax bin).

Examples
--------
>>> from analysis_lib.datasets.toys import make_inferno_toy
>>> from analysis_lib.training.asimov import inferno_toy_nuisances
>>> X, y = make_inferno_toy(300, 300, seed=0)
>>> clf = InfernoClassifier(n_bins=4, hidden_units=(8,), epochs=1, batch_size=600, seed=0,
...                         nuisances=inferno_toy_nuisances()).fit(X, y)
>>> clf.predict_proba(X[:2]).shape, clf.predict(X[:2]).dtype
((2, 4), dtype('int64'))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from analysis_lib.training._keras_estimator import KerasModelEstimator, keras_predict
from analysis_lib.training.asimov import Nuisance, check_nuisances
from analysis_lib.training.errors import TrainingInputError, UnknownVariationError
from analysis_lib.training.inputs import (
    feature_matrix,
    labels,
    nonnegative_weights,
    number_or_nan,
    sample_weights,
)

__all__ = ["InfernoClassifier"]

FloatArray = NDArray[np.float64]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise TrainingInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    out = number_or_nan(value)
    if not math.isfinite(out) or out <= 0.0:
        raise TrainingInputError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def _build_network(n_features: int, n_bins: int, hidden: Sequence[int], activation: str):
    import keras

    layers = [keras.Input((n_features,))]
    layers += [keras.layers.Dense(int(u), activation=activation) for u in hidden]
    layers.append(keras.layers.Dense(n_bins))  # logits
    return keras.Sequential(layers)


def _inferno_model_class():
    """The Keras model class (defined lazily so importing this module does not import Keras)."""
    import keras
    import tensorflow as tf

    class InfernoModel(keras.Model):
        """Network + INFERNO loss in ``train_step``; ``call`` returns the logits."""

        def __init__(self, network, *, mean, scale, nuisances, temperature, s, b,
                     n_variations=0, variation_constraint=None, **kwargs):  # fmt: skip
            super().__init__(**kwargs)
            self._n_variations = int(n_variations)
            self._variation_constraint = variation_constraint
            self.network = network
            self._mean = tf.constant(mean, tf.float32)
            self._scale = tf.constant(scale, tf.float32)
            self._nuisances = tuple(nuisances)
            self._temperature = float(temperature)
            self._s = float(s)
            self._b = float(b)
            n_features = len(mean)
            self._n_features = n_features
            self._onehot = [
                tf.constant(np.eye(n_features)[nu.feature], tf.float32)
                if nu.feature is not None
                else None
                for nu in self._nuisances
            ]
            self._loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, x, training=False):
            return self.network((x - self._mean) / self._scale, training=training)

        @property
        def metrics(self):
            return [self._loss_tracker]

        def _moved(self, x, theta):
            """Background events at nuisance values ``theta`` (differentiable)."""
            for i, nu in enumerate(self._nuisances):
                if nu.kind == "shift":
                    x = x + (theta[i] - nu.nominal) * self._onehot[i]
                elif nu.kind == "scale":
                    x = x * (1.0 + (theta[i] / nu.nominal - 1.0) * self._onehot[i])
                elif nu.kind == "rate":
                    x = x * (1.0 + (nu.nominal / theta[i] - 1.0) * self._onehot[i])
            return x

        def _template(self, x, w, training):
            p = tf.nn.softmax(self(x, training=training) / self._temperature, axis=-1)
            return tf.reduce_sum(w[:, None] * p, axis=0) / (tf.reduce_sum(w) + 1e-12)

        def inferno_loss(self, x, y, sw, training=False):
            """Expected variance of ``s`` with nuisances profiled, and the Fisher matrix."""
            y = tf.reshape(tf.cast(y, tf.float32), [-1])
            sw = tf.ones_like(y) if sw is None else tf.reshape(tf.cast(sw, tf.float32), [-1])
            w_sig, w_bkg = sw * y, sw * (1.0 - y)
            d = self._n_features
            x = tf.cast(x, tf.float32)
            # variation tables: columns after the features hold (x_up - x_down) / 2 per event
            # and variation, the derivative of the event's features by its nuisance
            displacements = [x[:, d * (j + 1) : d * (j + 2)] for j in range(self._n_variations)]
            x = x[:, :d]
            t_sig = self._template(x, w_sig, training)
            theta = tf.constant([nu.nominal for nu in self._nuisances] or [0.0], tf.float32)
            jvps = {}
            t_bkg = None
            for i, nu in enumerate(self._nuisances):
                if nu.kind == "yield":
                    continue
                tangent = tf.one_hot(i, len(self._nuisances), dtype=tf.float32)
                with tf.autodiff.ForwardAccumulator(theta, tangent) as acc:
                    t_moved = self._template(self._moved(x, theta), w_bkg, training)
                t_bkg = t_moved if t_bkg is None else t_bkg  # at theta = nominal
                jvps[i] = self._b * acc.jvp(t_moved)
            if t_bkg is None:
                t_bkg = self._template(x, w_bkg, training)
            jac = [t_sig] + [
                jvps[i] if i in jvps else self._b / nu.nominal * t_bkg
                for i, nu in enumerate(self._nuisances)
            ]
            for delta in displacements:  # signal and background move with the variation
                with tf.autodiff.ForwardAccumulator(x, delta) as acc:
                    nu_moved = self._s * self._template(x, w_sig, training) + self._b * (
                        self._template(x, w_bkg, training)
                    )
                jac.append(acc.jvp(nu_moved))
            jac = tf.stack(jac)  # (n_params, n_bins)
            nu_exp = self._s * t_sig + self._b * t_bkg + 1e-6
            fisher = tf.matmul(jac / nu_exp, jac, transpose_b=True)
            vc = self._variation_constraint
            constraints = (
                [0.0]
                + [0.0 if n.constraint is None else 1.0 / n.constraint**2 for n in self._nuisances]
                + [0.0 if vc is None else 1.0 / vc**2] * self._n_variations
            )
            fisher = fisher + tf.linalg.diag(tf.constant(constraints, tf.float32))
            cov = tf.linalg.inv(fisher)
            return cov[0, 0], fisher

        def train_step(self, data):
            x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
            with tf.GradientTape() as tape:
                loss, _ = self.inferno_loss(x, y, sw, training=True)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            self._loss_tracker.update_state(loss)
            return {"loss": self._loss_tracker.result()}

        def test_step(self, data):
            x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
            loss, _ = self.inferno_loss(x, y, sw, training=False)
            self._loss_tracker.update_state(loss)
            return {"loss": self._loss_tracker.result()}

    return InfernoModel


#: The chance, over a whole training, that some batch holds no signal or no background
#: event that :func:`batch_size_for` accepts.
EMPTY_BATCH_RISK = 1e-3


def batch_size_for(y: ArrayLike, w: ArrayLike, steps: int) -> int:
    """The smallest batch size for which ``steps`` random batches all hold signal and
    background (events of positive weight), but for a chance of :data:`EMPTY_BATCH_RISK`.

    A batch of ``k`` events drawn from ``n`` without either class with probability about
    ``(1 - f_s) ** k + (1 - f_b) ** k`` (``f``: the classes' fractions of the events).
    Returns ``len(y) + 1`` when even one batch of all events would lack a class.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.r_[np.ones(50), np.zeros(950)]
    >>> batch_size_for(y, np.ones(1000), steps=100)  # 5 % signal
    238
    """
    y = np.asarray(y)
    w = np.asarray(w)
    n = len(y)
    fractions = [np.count_nonzero((y == c) & (w > 0)) / n if n else 0.0 for c in (0, 1)]
    if min(fractions) == 0.0:
        return n + 1
    per_batch = 1.0 - (1.0 - EMPTY_BATCH_RISK) ** (1.0 / max(int(steps), 1))
    # (1 - f) ** k <= per_batch / 2 for both classes
    k = max(math.log(per_batch / 2) / math.log1p(-f) if f < 1 else 1.0 for f in fractions)
    return min(max(1, math.ceil(k)), n)


def _whole_batches(arrays: tuple, batch: int, seed: int | None) -> tuple:
    """The events cut to whole batches: ``len % batch`` of them, drawn at random once, are
    left out, so that every batch of every epoch is full (Keras reshuffles the rest each
    epoch, as fast as it batches arrays; a ``tf.data`` shuffle of single events was about
    a quarter slower)."""
    n = len(arrays[0])
    keep = np.sort(np.random.default_rng(seed).permutation(n)[: (n // batch) * batch])
    return tuple(a[keep] for a in arrays)


def _one_batch(arrays: tuple):
    """``tf.data``: all events in one batch (a validation loss over the whole set)."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(arrays).batch(len(arrays[0]))


class InfernoClassifier(KerasModelEstimator, BaseEstimator):
    """A neural summary statistic trained to minimise the expected uncertainty on the signal.

    Parameters
    ----------
    n_bins : int, default 10
        Softmax outputs, i.e. bins of the summary histogram.
    hidden_units : sequence of int, default (100, 100)
        Dense hidden layers.
    activation : str, default "relu"
        Hidden-layer activation.
    temperature : float, default 0.1
        Softmax temperature in training (the paper's 0.1); ``predict_proba`` uses it too.
    nuisances : sequence of Nuisance, default ()
        Nuisances of the background model, profiled in the loss (e.g.
        :func:`~analysis_lib.training.asimov.inferno_toy_nuisances`). The training
        background must be generated at their ``nominal`` values.
    signal_yield, background_yield : float, default 50, 1000
        Expected signal and background counts ``s`` and ``b`` of the analysis.
    epochs : int, default 50
    batch_size : int, default 2000
        Events per step. Every batch must hold signal and background (the Fisher matrix
        of a batch without signal has no inverse): ``fit`` refuses a size for which a
        batch without either is not negligible (see :func:`batch_size_for`). Every batch is
        full: ``len(X) % batch_size`` events, drawn at random once, are left out of the
        training, and the rest is reshuffled every epoch.
    learning_rate : float, default 1e-3
        Adam step size at the start.
    learning_rate_decay : float, default 1.0
        Step size at the end of training, as a fraction of ``learning_rate``, reached by a
        cosine decay over all steps (1.0: constant).
    variation_constraint : float or None, default 1.0
        Gaussian constraint width of the nuisances of variation tables (``fit``'s
        ``variations``), in units of their +-1 sigma variation; None leaves them free.
    validation_fraction : float, default 0.0
        Held-out fraction whose loss is recorded as ``val_loss`` in ``history_``.
    seed : int, optional
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) in ``fit``.
    verbose : int, default 0
        Keras verbosity.

    Attributes
    ----------
    model_ : keras.Model
        The trained network with its INFERNO ``train_step``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had column names.
    variation_names_ : list of str
        Names of the variation-table nuisances given to ``fit`` (parameters after
        ``nuisances`` in the Fisher matrix).
    history_ : dict of list of float
        Training (and validation) loss per epoch: the expected variance of ``s``.

    Notes
    -----
    ``fit(X, y, sample_weight)``: ``y`` is 1 for signal and 0 for background; weights must
    be >= 0 (they define templates, normalised per class to the yields). Events of each
    class should be numerous in every batch: the templates are batch estimates.
    GPU: TensorFlow places the model on a visible GPU by itself, else on the CPU.
    """

    def __init__(
        self,
        n_bins: int = 10,
        hidden_units: Sequence[int] = (100, 100),
        activation: str = "relu",
        temperature: float = 0.1,
        nuisances: Sequence[Nuisance] = (),
        signal_yield: float = 50.0,
        background_yield: float = 1000.0,
        epochs: int = 50,
        batch_size: int = 2000,
        learning_rate: float = 1e-3,
        learning_rate_decay: float = 1.0,
        variation_constraint: float | None = 1.0,
        validation_fraction: float = 0.0,
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_bins = n_bins
        self.hidden_units = hidden_units
        self.activation = activation
        self.temperature = temperature
        self.nuisances = nuisances
        self.signal_yield = signal_yield
        self.background_yield = background_yield
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.variation_constraint = variation_constraint
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    def _check_params(self) -> None:
        _positive_int("n_bins", self.n_bins)
        if self.n_bins < 2:
            raise TrainingInputError(f"n_bins must be >= 2, got {self.n_bins!r}")
        for u in self.hidden_units:
            _positive_int("hidden_units", u)
        _positive_float("temperature", self.temperature)
        _positive_float("signal_yield", self.signal_yield)
        _positive_float("background_yield", self.background_yield)
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_float("learning_rate", self.learning_rate)
        if not 0.0 <= float(self.learning_rate_decay) <= 1.0:
            raise TrainingInputError(
                f"learning_rate_decay must be in [0, 1], got {self.learning_rate_decay!r}"
            )
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise TrainingInputError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        if self.variation_constraint is not None:
            _positive_float("variation_constraint", self.variation_constraint)
        check_nuisances(self.nuisances)

    def _make_model(self, n_features: int, total_steps: int = 0):
        import keras

        network = _build_network(n_features, self.n_bins, self.hidden_units, self.activation)
        model = _inferno_model_class()(
            network,
            mean=self.feature_mean_,
            scale=self.feature_scale_,
            nuisances=self.nuisances,
            temperature=self.temperature,
            s=self.signal_yield,
            b=self.background_yield,
            n_variations=len(getattr(self, "variation_names_", ())),
            variation_constraint=self.variation_constraint,
        )
        model(np.zeros((1, n_features), np.float32))
        lr: Any = float(self.learning_rate)
        if total_steps > 0 and float(self.learning_rate_decay) < 1.0:
            lr = keras.optimizers.schedules.CosineDecay(
                lr, decay_steps=total_steps, alpha=float(self.learning_rate_decay)
            )
        model.compile(optimizer=keras.optimizers.Adam(lr))
        return model

    def _displacements(self, variations: Any, values: FloatArray) -> tuple[list[str], list]:
        """Names and per-event ``(x_up - x_down) / 2`` of the variation tables."""
        if variations is None:
            return [], []
        if not isinstance(variations, Mapping):
            raise TrainingInputError(
                f"variations must map a name to (X_up, X_down), got {type(variations).__name__}"
            )
        names, deltas = [], []
        for name, pair in variations.items():
            if not isinstance(name, str) or not name:
                raise TrainingInputError(f"variation names must be strings, got {name!r}")
            if name == "s" or any(nu.name == name for nu in self.nuisances):
                raise TrainingInputError(f"variation {name!r} clashes with a parameter name")
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TrainingInputError(f"variation {name!r} must be a pair (X_up, X_down)")
            tables = []
            for which, table in zip(("up", "down"), pair, strict=True):
                arr, _ = feature_matrix(table, name=f"variation {name!r} {which}")
                if arr.shape != values.shape:
                    raise TrainingInputError(
                        f"variation {name!r} {which} has shape {arr.shape}, X has "
                        f"{values.shape}: rows must be the same events as X"
                    )
                tables.append(arr)
            names.append(name)
            deltas.append(0.5 * (tables[0] - tables[1]))
        return names, deltas

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        variations: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None,
    ) -> InfernoClassifier:
        """Train on signal (``y == 1``) and background (``y == 0``) events; returns ``self``.

        Parameters
        ----------
        X, y, sample_weight : array_like
            Events, labels (1 signal, 0 background), non-negative weights.
        variations : mapping of str to (X_up, X_down), optional
            Systematic variation tables (e.g. from the columnar pipeline): the same events
            as ``X``, row by row, with the features at the +1 and -1 sigma variation of
            each named nuisance. Each adds a nuisance ``theta`` (nominal 0, Gaussian
            constraint ``variation_constraint``) that moves signal and background events
            along ``x + theta * (x_up - x_down) / 2``.
        """
        import keras

        self._check_params()
        values, names = feature_matrix(X)
        yv = labels(y, values.shape[0])
        w = nonnegative_weights(sample_weights(sample_weight, values.shape[0]), "INFERNO templates")
        check_nuisances(self.nuisances, values.shape[1])
        var_names, deltas = self._displacements(variations, values)
        if self.seed is not None:
            keras.utils.set_random_seed(int(self.seed))
        self.variation_names_ = var_names
        self._fit_features(values, names)
        x32 = np.hstack([values, *deltas]).astype(np.float32)  # features, then displacements
        y32, w32 = yv.astype(np.float32), w.astype(np.float32)
        validation = None
        if self.validation_fraction > 0:
            rng = np.random.default_rng(self.seed)
            order = rng.permutation(len(x32))
            n_val = max(1, round(self.validation_fraction * len(x32)))
            val, tr = order[:n_val], order[n_val:]
            validation = (x32[val], y32[val], w32[val])
            if batch_size_for(y32[val], w32[val], 1) > n_val:
                raise TrainingInputError(
                    f"the validation events ({n_val}, validation_fraction="
                    f"{self.validation_fraction!r}) hold no signal or no background of "
                    "positive weight; INFERNO's loss needs both: raise validation_fraction"
                )
            x32, y32, w32 = x32[tr], y32[tr], w32[tr]
        batch = min(int(self.batch_size), len(x32))
        steps_per_epoch = len(x32) // batch
        needed = batch_size_for(y32, w32, steps_per_epoch * int(self.epochs))
        if needed > batch:
            n_sig = int(np.count_nonzero((y32 == 1) & (w32 > 0)))
            raise TrainingInputError(
                f"batch_size={self.batch_size!r} is too small for INFERNO here: with "
                f"{n_sig} weighted signal events among {len(x32)}, some batch would likely "
                f"hold no signal or no background, and its Fisher matrix no inverse; use "
                f"batch_size >= {needed}, or more signal events"
            )
        self.model_ = self._make_model(values.shape[1], steps_per_epoch * int(self.epochs))
        x32, y32, w32 = _whole_batches((x32, y32, w32), batch, self.seed)
        hist = self.model_.fit(
            x32,
            y32,
            sample_weight=w32,
            batch_size=batch,
            epochs=int(self.epochs),
            shuffle=True,
            validation_data=None if validation is None else _one_batch(validation),
            verbose=self.verbose,
        )
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        return self

    # --------------------------------------------------------------- prediction

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """Logits of the bins, shape (n, n_bins)."""
        x = self._checked(X)
        return keras_predict(self.model_, x, batch_size=65536)

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Softmax over the bins at the training ``temperature``, shape (n, n_bins)."""
        z = self.decision_function(X) / float(self.temperature)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """The bin of each event (argmax of the softmax), integers in ``[0, n_bins)``."""
        return np.argmax(self.decision_function(X), axis=1).astype(np.int64)

    def expected_variance(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        variations: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None,
    ) -> float:
        """The training loss (soft-histogram expected variance of ``s``) on a sample.

        ``variations`` must name the same variation tables as in ``fit``.
        """
        x = self._checked(X)
        yv = labels(y, x.shape[0]).astype(np.float32)
        w = sample_weights(sample_weight, x.shape[0]).astype(np.float32)
        names, deltas = self._displacements(variations, x.astype(np.float64))
        if names != list(self.variation_names_):
            raise UnknownVariationError(
                f"variations {names} differ from those the model was trained with "
                f"{list(self.variation_names_)}"
            )
        x_all = np.hstack([x, *deltas]).astype(np.float32)
        loss, _ = self.model_.inferno_loss(x_all, yv, w)
        return float(loss)

    # ------------------------------------------------------------------ pickling

    def _networks(self, model) -> list:
        return [model.network]

    def _new_model(self):
        return self._make_model(self.n_features_in_)

"""Adversarial "pivot" training (Louppe, Kagan, Cranmer, arXiv:1611.01046).

A classifier ``f(x)`` is trained against an adversary ``r`` that tries to predict the
nuisance ``z`` of each event from ``f(x)`` alone. The classifier minimises

    ``L_f(f) - lam * L_r(f, r)``

(cross-entropy minus ``lam`` times the adversary's negative log-likelihood), the adversary
minimises ``L_r``. At ``lam > 0`` the classifier is pushed towards a *pivot*: a score whose
distribution does not depend on ``z``; ``lam`` trades classification power for robustness.

Training, all inside the Keras ``Model.train_step`` of one model with two optimizers:

1. ``pretrain_epochs`` of the classifier alone (``L_f``);
2. ``adversary_pretrain_epochs`` of the adversary alone on the frozen classifier;
3. ``epochs`` of adversarial training: each step makes ``adversary_steps`` updates of the
   adversary on the batch, then one update of the classifier on ``L_f - lam * L_r``
   (the paper's Algorithm 1).

The adversary is a mixture density network (``adversary="gaussian_mixture"``, a continuous
nuisance, Gaussian-mixture negative log-likelihood) or a classifier
(``adversary="categorical"``, a nuisance with a few discrete values, e.g. the names of
systematic variations mapped to integers, or -1/0/+1 shifts). ``adversary_class=0`` trains it
on background events only (the nuisance then only needs to be irrelevant for background).

The nuisance is passed to ``fit`` as the keyword ``z`` (one value per event):
``fit(X, y, sample_weight=None, *, z)``; prediction needs only ``X``.

Examples
--------
>>> from analysis_lib.datasets.toys import make_pivot_toy
>>> X, y, z = make_pivot_toy(200, seed=0)
>>> clf = PivotClassifier(hidden_units=(8,), adversary_hidden_units=(8,), lam=10.0,
...                       pretrain_epochs=1, adversary_pretrain_epochs=1, epochs=1,
...                       batch_size=200, seed=0).fit(X, y, z=z)
>>> clf.predict_proba(X[:3]).shape, sorted(clf.classes_.tolist())
((3, 2), [0, 1])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from analysis_lib.training._keras_estimator import KerasModelEstimator, keras_predict
from analysis_lib.training._pivot_adversary import make_adversary
from analysis_lib.training.errors import TrainingInputError, UnknownParameterError
from analysis_lib.training.inputs import (
    feature_matrix,
    labels,
    nonnegative_weights,
    number_or_nan,
    one_per_event,
    sample_weights,
)

__all__ = ["PivotClassifier", "refit_adversary_nll"]

FloatArray = NDArray[np.float64]
ADVERSARIES = ("gaussian_mixture", "categorical")
MAX_CATEGORIES = 50


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise TrainingInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value: object, *, positive: bool) -> float:
    out = number_or_nan(value)
    if not math.isfinite(out) or out < 0.0 or (positive and out == 0.0):
        bound = "> 0" if positive else ">= 0"
        raise TrainingInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return out


def _nuisance_values(z: Any, n_events: int) -> FloatArray:
    if z is None:
        raise TrainingInputError(
            "z is required: fit(X, y, sample_weight=None, *, z) with the nuisance value of "
            "every event"
        )
    arr = one_per_event(z, n_events, name="z", item="nuisance value", items="z values")
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise TrainingInputError(f"z must be numeric, got dtype {arr.dtype}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TrainingInputError(
            f"z has {int(bad.sum())} NaN or infinite value(s) (first at row {row}: {values[row]!r})"
        )
    return values


def _pivot_model_class():
    """The Keras model class (built lazily so importing this module does not import Keras)."""
    import keras
    import tensorflow as tf

    class PivotModel(keras.Model):
        """Classifier (``call`` gives its logit) and adversary, trained in ``train_step``."""

        def __init__(self, classifier, adversary, adversary_optimizer, *, mean, scale, lam,
                     adversary_steps, adversary_class, **kwargs):  # fmt: skip
            super().__init__(**kwargs)
            self.classifier = classifier
            self.adversary = adversary
            self.adversary_optimizer = adversary_optimizer
            self._mean = tf.constant(mean, tf.float32)
            self._scale = tf.constant(scale, tf.float32)
            self._lam = float(lam)
            self._adversary_steps = int(adversary_steps)
            self._adversary_class = adversary_class
            self.phase = "adversarial"
            self._trackers = {
                name: keras.metrics.Mean(name=name)
                for name in ("loss", "classifier_loss", "adversary_loss")
            }

        @property
        def metrics(self):
            return list(self._trackers.values())

        def call(self, x, training=False):
            return self.classifier((x - self._mean) / self._scale, training=training)

        def _adversary_weight(self, y, sw):
            if self._adversary_class is None:
                return sw
            return sw * tf.cast(tf.equal(y, float(self._adversary_class)), sw.dtype)

        def _adversary_update(self, score, z, w_adv):
            with tf.GradientTape() as tape:
                loss_r = self.adversary.mean_nll(self.adversary(score, training=True), z, w_adv)
            grads = tape.gradient(loss_r, self.adversary.trainable_variables)
            self.adversary_optimizer.apply(grads, self.adversary.trainable_variables)
            return loss_r

        def train_step(self, data):
            x, yz, sw = keras.utils.unpack_x_y_sample_weight(data)
            y, z = yz[:, 0], yz[:, 1]
            sw = tf.ones_like(y) if sw is None else tf.reshape(tf.cast(sw, tf.float32), [-1])
            w_adv = self._adversary_weight(y, sw)
            logs = {}
            if self.phase in ("adversary", "adversarial"):
                score = tf.stop_gradient(tf.sigmoid(self(x)))
                steps = 1 if self.phase == "adversary" else self._adversary_steps
                for _ in range(steps):
                    logs["adversary_loss"] = self._adversary_update(score, z, w_adv)
                logs["loss"] = -self._lam * logs["adversary_loss"]
            if self.phase in ("classifier", "adversarial"):
                variables = self.classifier.trainable_variables
                with tf.GradientTape() as tape:
                    logit = tf.reshape(self(x, training=True), [-1])
                    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logit)
                    loss_f = tf.reduce_sum(sw * bce) / (tf.reduce_sum(sw) + 1e-12)
                    loss = loss_f
                    if self.phase == "adversarial":
                        out = self.adversary(tf.sigmoid(logit)[:, None])
                        loss_r = self.adversary.mean_nll(out, z, w_adv)
                        loss = loss_f - self._lam * loss_r
                        logs["adversary_loss"] = loss_r
                grads = tape.gradient(loss, variables)
                self.optimizer.apply(grads, variables)
                logs["classifier_loss"] = loss_f
                logs["loss"] = loss
            for name, value in logs.items():
                self._trackers[name].update_state(value)
            return {name: self._trackers[name].result() for name in logs}

    return PivotModel


class PivotClassifier(KerasModelEstimator, ClassifierMixin, BaseEstimator):
    """Binary classifier made insensitive to a nuisance by an adversary (learning to pivot).

    Parameters
    ----------
    hidden_units : sequence of int, default (64, 64)
        Dense ReLU hidden layers of the classifier (sigmoid output).
    adversary : {"gaussian_mixture", "categorical"}, default "gaussian_mixture"
        Mixture density network for a continuous ``z``, or a classifier of discrete ``z``.
    n_components : int, default 5
        Gaussian components of the mixture density network.
    adversary_hidden_units : sequence of int, default (32, 32)
        Dense ReLU hidden layers of the adversary.
    lam : float, default 1.0
        λ of the paper: weight of the adversary's loss in the classifier's objective;
        0 trains a plain classifier (the adversary is still trained, for diagnostics).
    adversary_class : {None, 0, 1}, default None
        Train the adversary on all events (None) or on events of this class only (0 for
        background only).
    adversary_steps : int, default 1
        Adversary updates per classifier update in adversarial training.
    pretrain_epochs, adversary_pretrain_epochs, epochs : int, default 5, 5, 20
        Epochs of classifier pre-training, adversary pre-training, adversarial training.
    batch_size : int, default 256
    learning_rate, adversary_learning_rate : float, default 1e-3
        Adam step sizes of the classifier and the adversary.
    seed : int, optional
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) in ``fit``.
    verbose : int, default 0
        Keras verbosity.

    Attributes
    ----------
    model_ : keras.Model
        Classifier and adversary; ``model_.classifier`` and ``model_.adversary``.
    classes_ : ndarray, [0, 1]
    z_classes_ : ndarray
        Distinct nuisance values, in class order (categorical adversary only).
    z_mean_, z_scale_ : float
        Standardisation of ``z`` for the mixture density network (its NLL is reported in
        the units of ``z``).
    history_ : dict of list of float
        Per-epoch losses of the three phases, keys prefixed ``pretrain_``,
        ``adversary_pretrain_`` and none.

    Notes
    -----
    ``sample_weight`` weights both losses; negative weights are refused (the adversary's
    likelihood is not defined with them). GPU: TensorFlow places the model on a visible
    GPU by itself, else on the CPU.
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (64, 64),
        adversary: str = "gaussian_mixture",
        n_components: int = 5,
        adversary_hidden_units: Sequence[int] = (32, 32),
        lam: float = 1.0,
        adversary_class: int | None = None,
        adversary_steps: int = 1,
        pretrain_epochs: int = 5,
        adversary_pretrain_epochs: int = 5,
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        adversary_learning_rate: float = 1e-3,
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.hidden_units = hidden_units
        self.adversary = adversary
        self.n_components = n_components
        self.adversary_hidden_units = adversary_hidden_units
        self.lam = lam
        self.adversary_class = adversary_class
        self.adversary_steps = adversary_steps
        self.pretrain_epochs = pretrain_epochs
        self.adversary_pretrain_epochs = adversary_pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.adversary_learning_rate = adversary_learning_rate
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    def _check_params(self) -> None:
        if self.adversary not in ADVERSARIES:
            raise TrainingInputError(
                f"adversary must be one of {ADVERSARIES}, got {self.adversary!r}"
            )
        for u in (*self.hidden_units, *self.adversary_hidden_units):
            _count("hidden_units", u, 1)
        _count("n_components", self.n_components, 1)
        _number("lam", self.lam, positive=False)
        if self.adversary_class not in (None, 0, 1):
            raise TrainingInputError(
                f"adversary_class must be None, 0 or 1, got {self.adversary_class!r}"
            )
        _count("adversary_steps", self.adversary_steps, 1)
        _count("pretrain_epochs", self.pretrain_epochs, 0)
        _count("adversary_pretrain_epochs", self.adversary_pretrain_epochs, 0)
        _count("epochs", self.epochs, 0)
        _count("batch_size", self.batch_size, 1)
        _number("learning_rate", self.learning_rate, positive=True)
        _number("adversary_learning_rate", self.adversary_learning_rate, positive=True)

    def _adversary_outputs(self) -> int:
        if self.adversary == "categorical":
            return len(self.z_classes_)
        return int(self.n_components)

    def _make_model(self):
        import keras

        d = self.n_features_in_
        classifier = keras.Sequential(
            [keras.Input((d,))]
            + [keras.layers.Dense(int(u), activation="relu") for u in self.hidden_units]
            + [keras.layers.Dense(1)]
        )
        adversary = make_adversary(
            self.adversary, self.adversary_hidden_units, self._adversary_outputs()
        )
        adv_opt = keras.optimizers.Adam(float(self.adversary_learning_rate))
        adv_opt.build(adversary.trainable_variables)
        model = _pivot_model_class()(
            classifier,
            adversary,
            adv_opt,
            mean=self.feature_mean_,
            scale=self.feature_scale_,
            lam=self.lam,
            adversary_steps=self.adversary_steps,
            adversary_class=self.adversary_class,
        )
        model(np.zeros((1, d), np.float32))
        opt = keras.optimizers.Adam(float(self.learning_rate))
        opt.build(classifier.trainable_variables)
        model.compile(optimizer=opt)
        return model

    def _encode_z(self, z: FloatArray, *, fitting: bool) -> FloatArray:
        if self.adversary == "categorical":
            if fitting:  # checked before it replaces a previous fit's classes
                classes = np.unique(z)
                if classes.size < 2:
                    raise TrainingInputError(
                        f"z has a single value ({classes[0]!r}); the categorical "
                        "adversary needs at least two nuisance classes"
                    )
                if classes.size > MAX_CATEGORIES:
                    raise TrainingInputError(
                        f"z has {classes.size} distinct values, too many for "
                        f"adversary='categorical' (at most {MAX_CATEGORIES}); use "
                        "adversary='gaussian_mixture' for a continuous nuisance"
                    )
                self.z_classes_ = classes
            idx = np.searchsorted(self.z_classes_, z)
            idx = np.clip(idx, 0, self.z_classes_.size - 1)
            unknown = self.z_classes_[idx] != z
            if unknown.any():
                raise UnknownParameterError(
                    f"z value {float(z[unknown][0])!r} is not a nuisance class seen in fit "
                    f"(known: {self.z_classes_.tolist()})"
                )
            return idx.astype(np.float64)
        if fitting:  # checked before it replaces a previous fit's standardisation
            std = float(z.std())
            if std == 0.0:
                raise TrainingInputError(
                    f"z is constant ({z[0]!r}); the adversary needs a varying nuisance"
                )
            self.z_mean_ = float(z.mean())
            self.z_scale_ = std
        return (z - self.z_mean_) / self.z_scale_

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        z: ArrayLike | None = None,
    ) -> PivotClassifier:
        """Train classifier and adversary; ``z`` is the nuisance value of each event.

        Parameters
        ----------
        X : array_like of shape (n, n_features)
        y : array_like of shape (n,)
            1 for signal (the paper's ``Y = 1``), 0 for background.
        sample_weight : array_like of shape (n,), optional
            Non-negative event weights.
        z : array_like of shape (n,)
            Nuisance value per event (keyword-only, required): continuous for the mixture
            adversary, a few discrete values for the categorical one.

        Returns
        -------
        self
        """
        import keras

        self._check_params()
        values, names = feature_matrix(X)
        n = values.shape[0]
        yv = labels(y, n)
        zv = _nuisance_values(z, n)
        w = nonnegative_weights(sample_weights(sample_weight, n), "pivot training")
        if self.adversary_class is not None:
            sel = yv == self.adversary_class
            zv_sel = zv[sel]
        else:
            zv_sel = zv
        # encode on the events the adversary sees (classes/standardisation from them)
        self._encode_z(zv_sel, fitting=True)
        if self.adversary_class is not None:
            zenc = np.zeros(n)
            zenc[sel] = self._encode_z(zv_sel, fitting=False)
        else:
            zenc = self._encode_z(zv, fitting=False)
        if self.seed is not None:
            keras.utils.set_random_seed(int(self.seed))
        self.classes_ = np.array([0, 1])
        self._fit_features(values, names)
        self.model_ = self._make_model()
        x32 = values.astype(np.float32)
        yz = np.column_stack([yv, zenc]).astype(np.float32)
        w32 = w.astype(np.float32)
        self.history_ = {}
        for phase, epochs, prefix in (
            ("classifier", self.pretrain_epochs, "pretrain_"),
            ("adversary", self.adversary_pretrain_epochs, "adversary_pretrain_"),
            ("adversarial", self.epochs, ""),
        ):
            if epochs == 0:
                continue
            self.model_.phase = phase
            self.model_.train_function = None  # re-trace train_step for this phase
            hist = self.model_.fit(
                x32,
                yz,
                sample_weight=w32,
                batch_size=int(self.batch_size),
                epochs=int(epochs),
                shuffle=True,
                verbose=self.verbose,
            )
            for key, vals in hist.history.items():
                self.history_[prefix + key] = [float(v) for v in vals]
        return self

    # --------------------------------------------------------------- prediction

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """The classifier's logit, shape (n,)."""
        x = self._checked(X)
        return keras_predict(self.model_, x, batch_size=65536).reshape(-1)

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """``[P(y=0 | x), P(y=1 | x)]``, shape (n, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """Class 1 where ``P(y=1 | x) > 0.5``, else 0."""
        return (self.decision_function(X) > 0.0).astype(np.int64)

    def adversary_nll(
        self, X: ArrayLike, z: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """Mean negative log-likelihood of ``z`` under the trained adversary (units of ``z``).

        Select the adversary's class yourself when ``adversary_class`` is set.
        """
        x = self._checked(X)
        zv = _nuisance_values(z, x.shape[0])
        w = sample_weights(sample_weight, x.shape[0])
        return _mean_nll(self, self.model_.adversary, x, zv, w)

    # ------------------------------------------------------------------ pickling

    def _networks(self, model) -> list:
        return [model.classifier, model.adversary]

    def _new_model(self):
        return self._make_model()


def _mean_nll(est: PivotClassifier, adversary, x: np.ndarray, z: FloatArray, w: FloatArray):
    """Weighted mean NLL of ``z`` given the estimator's scores, in the units of ``z``."""
    zenc = est._encode_z(z, fitting=False)
    score = 1.0 / (1.0 + np.exp(-est.decision_function(x)))
    out = adversary.predict(score[:, None].astype(np.float32), batch_size=65536, verbose=0)
    nll = np.asarray(adversary.nll(out, zenc.astype(np.float32)), np.float64)
    if est.adversary == "gaussian_mixture":
        nll = nll + math.log(est.z_scale_)
    return float(np.sum(w * nll) / np.sum(w))


def refit_adversary_nll(
    estimator: PivotClassifier,
    X_train: ArrayLike,
    z_train: ArrayLike,
    X_test: ArrayLike,
    z_test: ArrayLike,
    *,
    epochs: int = 20,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    seed: int | None = None,
) -> float:
    """Held-out NLL of a fresh adversary trained on the frozen classifier's output.

    The check of the paper: if the classifier is a pivot, ``f(X)`` tells nothing about
    ``Z``, and the best adversary's NLL equals the entropy of the ``Z`` prior
    (``0.5 * log(2 pi e) = 1.4189`` for ``Z ~ N(0, 1)``). The adversary has the estimator's
    architecture and is trained on ``(f(X_train), z_train)``; select the adversary's class
    of events yourself when ``adversary_class`` is set.

    Returns
    -------
    float
        Mean NLL of ``z_test`` given ``f(X_test)``, in the units of ``z``.
    """
    import keras

    check_is_fitted(estimator, "model_")
    x_tr, x_te = estimator._checked(X_train), estimator._checked(X_test)
    z_tr = _nuisance_values(z_train, x_tr.shape[0])
    z_te = _nuisance_values(z_test, x_te.shape[0])
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    adversary = make_adversary(
        estimator.adversary, estimator.adversary_hidden_units, estimator._adversary_outputs()
    )
    adversary.compile(optimizer=keras.optimizers.Adam(float(learning_rate)))
    score = 1.0 / (1.0 + np.exp(-estimator.decision_function(x_tr)))
    adversary.fit(
        score[:, None].astype(np.float32),
        estimator._encode_z(z_tr, fitting=False).astype(np.float32),
        batch_size=int(batch_size),
        epochs=_count("epochs", epochs, 1),
        shuffle=True,
        verbose=0,
    )
    return _mean_nll(estimator, adversary, x_te, z_te, np.ones(x_te.shape[0]))

"""A dense neural-network binary classifier (Keras 3, TensorFlow backend), scikit-learn style.

The network is ``Input -> standardisation -> Dense x len(hidden_units) -> Dense(1, sigmoid)``;
the standardisation (a ``Rescaling`` layer) carries the training mean and standard
deviation, so the saved model (and its ONNX export) takes raw features. Training is Keras
``Model.fit`` with weighted binary cross-entropy, early stopping as a callback (best
weights restored), a seeded run (``keras.utils.set_random_seed``) and TensorFlow placement
on the GPU when there is one.

Pickling (``pickle``, ``cloudpickle``, Dask) carries the model as its ``.keras`` bytes.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(300, 2)); y = (X[:, 0] > 0).astype(int)
>>> clf = KerasClassifier(hidden_units=(8,), epochs=3, validation_fraction=0.0).fit(X, y)
>>> clf.predict_proba(X).shape, clf.device_
((300, 2), '/CPU:0')
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._keras_estimator import keras_predict
from .base import BinaryClassifierBase
from .device import resolve_tensorflow_device
from .errors import TrainingInputError
from .split import check_fraction, validation_split


def keras_model_to_bytes(model: Any) -> bytes:
    """A Keras model as the bytes of its ``.keras`` file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def keras_model_from_bytes(blob: bytes) -> Any:
    """The Keras model from :func:`keras_model_to_bytes`."""
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(blob)
        return keras.saving.load_model(path, compile=False)


class KerasClassifier(BinaryClassifierBase):
    """A feed-forward network for signal vs background, weighted, with early stopping.

    Parameters
    ----------
    hidden_units : sequence of int, default (64, 64)
        Width of each hidden layer.
    activation : str, default "relu"
    dropout : float, default 0.0
        Dropout rate after each hidden layer.
    learning_rate : float, default 1e-3
        Adam's learning rate.
    batch_size : int, default 256
    epochs : int, default 50
        Maximum number of epochs.
    validation_fraction : float, default 0.2
        Share of each class held out (stratified, seeded) for early stopping; 0 trains on
        everything for ``epochs`` epochs.
    early_stopping_patience : int or None, default 5
        Epochs without improvement of the weighted validation loss before stopping; the
        best epoch's weights are restored. None: no early stopping.
    negative_weights : {"keep", "abs", "zero", "error"}, default "keep"
        Policy for negative event weights (:mod:`analysis_lib.training.weights`); the
        weighted cross-entropy accepts negative weights as they are.
    class_balance : bool, default False
        Scale the weights so signal and background carry the same total.
    standardize : bool, default True
        Normalise each feature with its training mean and variance (inside the model).
    device : str, default "auto"
        ``"auto"`` (``/GPU:0`` if TensorFlow sees a GPU), ``"cpu"``, ``"gpu[:i]"`` or
        ``"cuda[:i]"``; resolved at fit time into ``device_``.
    random_state : int, default 0
        Seed for the split, the initial weights and the shuffling
        (``keras.utils.set_random_seed``, which also seeds Python's and numpy's global
        generators).
    verbose : int, default 0
        Keras' verbosity.
    model_fn : callable, optional
        ``model_fn(n_features) -> keras.Model`` with one sigmoid output, replacing the
        default architecture (uncompiled; it is compiled with Adam and binary
        cross-entropy). Must be picklable to pickle the estimator.

    Attributes
    ----------
    model_ : keras.Model
    history_ : dict
        Loss (and validation loss) per epoch.
    n_epochs_ : int
        Epochs run.
    device_ : str
        TensorFlow device it trained on.
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        epochs: int = 50,
        validation_fraction: float = 0.2,
        early_stopping_patience: int | None = 5,
        negative_weights: str = "keep",
        class_balance: bool = False,
        standardize: bool = True,
        device: str = "auto",
        random_state: int = 0,
        verbose: int = 0,
        model_fn: Callable[[int], Any] | None = None,
    ) -> None:
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping_patience = early_stopping_patience
        self.negative_weights = negative_weights
        self.class_balance = class_balance
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.model_fn = model_fn

    # -- the network -----------------------------------------------------------------------
    def _build(self, X: NDArray) -> Any:
        import keras

        n_features = X.shape[1]
        if self.model_fn is not None:
            return self.model_fn(n_features)
        units = list(self.hidden_units)
        if any(int(u) < 1 for u in units):
            raise TrainingInputError(f"hidden_units must be positive integers, got {units!r}")
        inputs = keras.Input(shape=(n_features,), name="features")
        h = inputs
        if self.standardize:
            mean = X.mean(axis=0)
            var = np.maximum(X.var(axis=0), 1e-12)
            std = np.sqrt(var)
            # Rescaling bakes the constants into the graph (a Normalization layer's
            # statistics become extra graph inputs in the ONNX export)
            h = keras.layers.Rescaling(
                scale=(1.0 / std).tolist(), offset=(-mean / std).tolist(), name="standardize"
            )(h)
        for i, u in enumerate(units):
            h = keras.layers.Dense(int(u), activation=self.activation, name=f"dense_{i}")(h)
            if self.dropout:
                h = keras.layers.Dropout(float(self.dropout), name=f"dropout_{i}")(h)
        out = keras.layers.Dense(1, activation="sigmoid", name="signal_probability")(h)
        return keras.Model(inputs, out, name="binary_classifier")

    def _fit_arrays(self, X: NDArray, y: NDArray, w: NDArray) -> None:
        import keras
        import tensorflow as tf

        self.device_ = resolve_tensorflow_device(self.device)
        fraction = check_fraction(self.validation_fraction)
        train, val = validation_split(y, fraction, seed=self.random_state)
        w = w / np.abs(w[train]).mean()  # the loss scale (and so the step size) of events
        keras.utils.set_random_seed(int(self.random_state))
        X32 = X.astype(np.float32)
        with tf.device(self.device_):
            model = self._build(X32[train])
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=float(self.learning_rate)),
                loss="binary_crossentropy",
            )
            callbacks = []
            if val.size and self.early_stopping_patience is not None:
                callbacks.append(
                    keras.callbacks.EarlyStopping(
                        monitor="val_loss",
                        patience=int(self.early_stopping_patience),
                        restore_best_weights=True,
                    )
                )
            history = model.fit(
                X32[train],
                y[train].astype(np.float32),
                sample_weight=w[train].astype(np.float32),
                validation_data=(
                    (X32[val], y[val].astype(np.float32), w[val].astype(np.float32))
                    if val.size
                    else None
                ),
                batch_size=int(self.batch_size),
                epochs=int(self.epochs),
                shuffle=True,
                callbacks=callbacks,
                verbose=self.verbose,
            )
        self.model_ = model
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.n_epochs_ = len(self.history_.get("loss", []))

    def _score(self, X: NDArray) -> NDArray[np.float64]:
        X32 = X.astype(np.float32)
        out = keras_predict(self.model_, X32, batch_size=max(int(self.batch_size), 8192))
        return out.reshape(-1)

    # -- pickling --------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if "model_" in state:
            state = dict(state)
            state["model_"] = keras_model_to_bytes(state["model_"])
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("model_"), bytes):
            state = dict(state)
            state["model_"] = keras_model_from_bytes(state["model_"])
        super().__setstate__(state)

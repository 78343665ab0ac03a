"""Training: scikit-learn-style estimators for signal vs background, with systematics.

- :class:`XGBoostClassifier`, :class:`KerasClassifier` -- weighted binary classifiers
  (negative-weight policy, class balancing, early stopping on a seeded stratified
  validation split, GPU when present) in :mod:`.xgboost_classifier`, :mod:`.keras_classifier`;
- :class:`ParameterisedClassifier` -- one model across a physics parameter θ (Baldi et al.),
  :func:`auc_vs_parameter`, :func:`leave_one_parameter_out` (:mod:`.parameterised`);
- :class:`VariationAugmentedClassifier` -- trained across systematic-variation tables with
  configurable mixing (:mod:`.augmentation`); :func:`label_tables` builds its input;
- :class:`NuisanceParameterisedClassifier` -- the nuisance value as an input, evaluated at
  nominal, any value, profiled, or as an envelope (:mod:`.nuisance`);
- :class:`PivotClassifier` -- adversarial training against a nuisance (Louppe et al.),
  Keras ``train_step``, categorical or mixture-density adversary (:mod:`.pivot`);
- :class:`InfernoClassifier` -- inference-aware training (de Castro & Dorigo): softmax
  summary, Asimov likelihood, loss = expected variance of the signal strength
  (:mod:`.inferno`); :func:`expected_sigma` of any binned summary with nuisances profiled
  (:mod:`.asimov`);
- :func:`save_model`, :func:`load_model`, :func:`read_metadata` -- one atomic archive with
  metadata (:mod:`.persistence`); :func:`export_onnx`, :func:`onnx_predict_proba`
  (:mod:`.onnx_export`);
- errors (:mod:`.errors`), weights (:mod:`.weights`), validation split (:mod:`.split`),
  device choice (:mod:`.device`).

Examples
--------
>>> from analysis_lib.training import XGBoostClassifier
>>> from sklearn.base import clone
>>> clone(XGBoostClassifier(max_depth=3)).get_params()["max_depth"]
3
"""

from .asimov import Nuisance, expected_sigma
from .augmentation import VariationAugmentedClassifier
from .device import resolve_tensorflow_device, resolve_xgboost_device
from .errors import (
    FeatureMismatchError,
    TrainingInputError,
    UnknownParameterError,
    UnknownVariationError,
)
from .inferno import InfernoClassifier
from .keras_classifier import KerasClassifier
from .nuisance import NuisanceParameterisedClassifier
from .onnx_export import export_onnx, onnx_predict_proba
from .parameterised import (
    ParameterisedClassifier,
    auc_vs_parameter,
    leave_one_parameter_out,
    resample_background_parameter,
    weighted_auc,
)
from .persistence import load_model, read_metadata, save_model
from .pivot import PivotClassifier, refit_adversary_nll
from .split import validation_split
from .tables import label_tables
from .weights import NEGATIVE_WEIGHT_POLICIES, training_weights
from .xgboost_classifier import XGBoostClassifier

__all__ = [
    "NEGATIVE_WEIGHT_POLICIES",
    "FeatureMismatchError",
    "InfernoClassifier",
    "KerasClassifier",
    "Nuisance",
    "NuisanceParameterisedClassifier",
    "ParameterisedClassifier",
    "PivotClassifier",
    "TrainingInputError",
    "UnknownParameterError",
    "UnknownVariationError",
    "VariationAugmentedClassifier",
    "XGBoostClassifier",
    "auc_vs_parameter",
    "expected_sigma",
    "export_onnx",
    "label_tables",
    "leave_one_parameter_out",
    "load_model",
    "onnx_predict_proba",
    "read_metadata",
    "refit_adversary_nll",
    "resample_background_parameter",
    "resolve_tensorflow_device",
    "resolve_xgboost_device",
    "save_model",
    "training_weights",
    "validation_split",
    "weighted_auc",
]

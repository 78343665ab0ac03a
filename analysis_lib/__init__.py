"""hepml-hub's user-side library: in every session image and on every Dask worker.

- :mod:`analysis_lib.datasets` -- event generators (Pythia 8 to NanoAOD-like ROOT files,
  the papers' toy benchmarks) and a sample registry addressed by name;
- :mod:`analysis_lib.columnar` -- coffea processors: selections, features, systematic
  variations, and model inference in the columnar pipeline;
- :mod:`analysis_lib.training` -- scikit-learn-style estimators (XGBoost, Keras 3):
  parameterised, augmented across variations, nuisance-parameterised, adversarial pivot,
  inference-aware (INFERNO); save/load with metadata and ONNX export;
- :mod:`analysis_lib.evaluation` -- weighted ROC/AUC, AMS/AMS1, threshold scans, pyhf
  models with the variations as modifiers (expected significance, sigma(mu)), plots;
- :mod:`analysis_lib.scan` -- resumable, fault-tolerant hyperparameter scans on Dask;
- :mod:`analysis_lib.compute` -- Dask clusters for the session's backend (local, Slurm,
  HTCondor, PBS, Kubernetes, dask-gateway) with TLS, GPU workers and version checks.
"""

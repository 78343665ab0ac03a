"""hepml-hub's user-side library: in every session image and on every Dask worker.

- :mod:`analysis_lib.datasets` -- event generators (Pythia 8 to NanoAOD-like ROOT files,
  the papers' toy benchmarks) and a sample registry addressed by name;
- :mod:`analysis_lib.columnar` -- coffea processors: selections, features, systematic
  variations, and model inference in the columnar pipeline.
"""

"""Hub side of hepml-hub: spawn form, option validation, GPUs, accounts and the spawner.

Each concept lives in its own module:

- :mod:`hepml_hub.options` -- the spawn form as data, and server-side validation of
  ``user_options`` (shared by the local spawner and KubeSpawner);
- :mod:`hepml_hub.gpus` -- NVML GPU inventory and allocation;
- :mod:`hepml_hub.accounts` -- per-user system accounts and private homes;
- :mod:`hepml_hub.forkserver` -- a pre-imported launcher that makes spawns fast;
- :mod:`hepml_hub.spawner` -- :class:`~hepml_hub.spawner.HepmlSpawner`;
- :mod:`hepml_hub.auth` -- the authenticator (sign-up, admin approval, first-run admin);
- :mod:`hepml_hub.kubespawner` -- :class:`~hepml_hub.kubespawner.HepmlKubeSpawner`, the same
  form and limits on Kubernetes;
- :mod:`hepml_hub.gpu_culling` (policy) and :mod:`hepml_hub.gpu_culler` (hub service) --
  sessions holding idle GPUs are warned, then stopped; busy training is kept;
- :mod:`hepml_hub.session` -- the session-side Jupyter server extension: the Dask panel's
  cluster factory, the clusters inventory, notices shown in JupyterLab;
- :mod:`hepml_hub.settings` and :mod:`hepml_hub.embedded` -- deployment settings mapped to traits.
"""

__version__ = "0.1.0"

"""Hub side of hepml-hub: spawn form, option validation, GPUs, accounts and the spawner.

Each concept lives in its own module:

- :mod:`hepml_hub.options` -- the spawn form as data, and server-side validation of
  ``user_options`` (shared by the local spawner and KubeSpawner);
- :mod:`hepml_hub.gpus` -- NVML GPU inventory and allocation;
- :mod:`hepml_hub.accounts` -- per-user system accounts and private homes;
- :mod:`hepml_hub.forkserver` -- a pre-imported launcher that makes spawns fast;
- :mod:`hepml_hub.spawner` -- :class:`~hepml_hub.spawner.HepmlSpawner`;
- :mod:`hepml_hub.auth` -- the authenticator (sign-up, admin approval, first-run admin);
- :mod:`hepml_hub.settings` and :mod:`hepml_hub.embedded` -- deployment settings mapped to traits.
"""

__version__ = "0.1.0"

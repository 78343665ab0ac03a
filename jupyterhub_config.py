"""hepml-hub's JupyterHub configuration: picks the deployment and maps settings to traits.

Site settings go above the last two lines (``c.HepmlHub.*``, ``c.HepmlSpawner.*``) or in a
file that loads this one with ``load_subconfig``. See ``extensions/hepml_hub/settings.py``.
"""

from hepml_hub.settings import HepmlHub

c = get_config()  # noqa: F821 -- provided by JupyterHub when it loads this file

HepmlHub(config=c).apply(c)

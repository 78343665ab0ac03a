"""Site configuration of every user's server that JSON cannot express.

- JupyterLab finds the hand-written ``hepml-session`` lab extension (the hub's notices,
  such as the GPU culler's warning, as notifications) inside the package;
- jupyter-server-proxy adds a launcher card, "Dask clusters & jobs", that opens the
  clusters inventory page (``<base>/hepml/inventory``, served by the ``hepml_hub.session``
  server extension) in a JupyterLab tab;
- jupyter-resource-usage shows memory and CPU against the limits chosen at spawn
  (``HEPML_MEMORY``, ``HEPML_CORES``);
- jupyterlab-nvdashboard (GPU dashboards) is enabled where it is installed (the GPU stack).
"""

import contextlib
import importlib.util
import os
from pathlib import Path

from traitlets.config import Config

from hepml_hub.session import LABEXTENSION_DIR

# The config loader provides ``c``; imported as a module (pytest's doctest collection), a
# blank one.
c = globals()["c"] if "c" in globals() else Config()

c.LabApp.extra_labextensions_path = [str(LABEXTENSION_DIR)]
c.ServerProxy.servers = {
    # No process and no proxying: only a launcher card whose link is our own page.
    "hepml-inventory": {
        "port": 9,  # never contacted (nothing links to /hepml-inventory/ itself)
        "new_browser_tab": False,
        "launcher_entry": {
            "title": "Dask clusters & jobs",
            "path_info": "hepml/inventory",
            "category": "Other",
            "icon_path": str(Path(__file__).with_name("inventory.svg")),
        },
    },
}

c.ResourceUseDisplay.track_cpu_percent = True
if os.environ.get("HEPML_CORES", "").isdigit():
    c.ResourceUseDisplay.cpu_limit = float(os.environ["HEPML_CORES"])
if os.environ.get("HEPML_MEMORY"):
    from analysis_lib.compute import parse_memory

    # The spawner always sets a valid value; a hand-made bad one is ignored.
    with contextlib.suppress(ValueError):
        c.ResourceUseDisplay.mem_limit = parse_memory(os.environ["HEPML_MEMORY"])

if importlib.util.find_spec("jupyterlab_nvdashboard") is not None:
    c.ServerApp.jpserver_extensions.update({"jupyterlab_nvdashboard": True})

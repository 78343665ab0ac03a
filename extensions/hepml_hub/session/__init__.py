"""Session side of hepml-hub: the Jupyter server extension every user's server loads.

Enabled by ``jupyter_server_config.d/hepml-session.json`` in the site configuration
(:mod:`hepml_hub`'s ``jupyter_config/``, first on ``JUPYTER_CONFIG_PATH``). It

- points dask-labextension at :func:`~hepml_hub.session.labcluster.session_cluster`, so
  the Dask panel builds clusters through :mod:`analysis_lib.compute` on the backend and
  resources chosen at spawn (:mod:`.labcluster`);
- serves the clusters inventory (:mod:`.inventory`) at ``<base>/hepml/clusters`` and as a
  page at ``<base>/hepml/inventory``, and the session's notices (:mod:`.notices`), through
  the routes of :mod:`.handlers`.

The ``hepml-session`` lab extension (``labextension/``) shows notices as JupyterLab
notifications.

Examples
--------
>>> _jupyter_server_extension_points()
[{'module': 'hepml_hub.session'}]
"""

from __future__ import annotations

from pathlib import Path

from hepml_hub.session.labcluster import install_defaults
from hepml_hub.session.notices import NoticeBoard

#: The prebuilt JupyterLab extension (plain JavaScript) that shows notices.
LABEXTENSION_DIR = Path(__file__).with_name("labextension")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "hepml_hub.session"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Install the Dask defaults and the routes."""
    from hepml_hub.session.handlers import handlers

    install_defaults()
    web_app = serverapp.web_app
    web_app.settings["hepml_notices"] = NoticeBoard()
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("hepml-session: Dask panel on analysis_lib.compute, inventory, notices")

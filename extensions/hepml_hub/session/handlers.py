"""REST endpoints and the inventory page of the session's server extension.

========================================  ==================================================
``GET    <base>/hepml/clusters``          the inventory (:func:`.inventory.collect`) as JSON
``DELETE <base>/hepml/clusters/<id>``     shut one entry down (204; 404 unknown; 502 refused)
``GET    <base>/hepml/notices``           notices for this session (:mod:`.notices`)
``POST   <base>/hepml/notices``           post a notice (the hub's GPU culler does)
``GET    <base>/hepml/inventory``         the inventory page (JupyterLab opens it from the
                                          launcher, in a tab of its own)
========================================  ==================================================

All of them need an authenticated user allowed on this server (the owner, or a hub service
with ``access:servers``), checked by jupyter_server's authorizer.

Examples
--------
>>> [pattern for pattern, _ in handlers("/user/alice/")][::2]
['/user/alice/hepml/clusters/?', '/user/alice/hepml/notices/?']
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from hepml_hub.session import inventory
from hepml_hub.session.notices import NoticeBoard

__all__ = ["handlers"]

PAGE = Path(__file__).with_name("inventory.html")
RESOURCE = "hepml"


class ClustersHandler(APIHandler):
    """The user's clusters and batch jobs."""

    auth_resource = RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        entries = await asyncio.to_thread(inventory.collect)
        self.finish(json.dumps([e.to_json() for e in entries]))

    @web.authenticated
    @authorized
    async def delete(self, entry_id: str) -> None:
        try:
            await inventory.shut_down(entry_id)
        except inventory.UnknownEntry as exc:
            raise web.HTTPError(404, str(exc)) from None
        except RuntimeError as exc:
            raise web.HTTPError(502, str(exc)) from None
        self.set_status(204)
        self.finish()


class NoticesHandler(APIHandler):
    """Notices for the session, posted by hub services."""

    auth_resource = RESOURCE

    @property
    def board(self) -> NoticeBoard:
        return self.settings["hepml_notices"]

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.finish(json.dumps(self.board.current()))

    @web.authenticated
    @authorized
    def post(self) -> None:
        try:
            notice = self.board.post(self.get_json_body() or {})
        except (ValueError, AttributeError) as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.log.warning("hepml notice %s: %s", notice["id"], notice["message"])
        self.set_status(201)
        self.finish(json.dumps(notice))


class InventoryPageHandler(JupyterHandler):
    """The inventory as a page: a table, refreshed every few seconds, with Shut down buttons."""

    auth_resource = RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        html = PAGE.read_text(encoding="utf-8")
        base = url_path_join(self.base_url, "hepml")
        html = html.replace("{{api}}", base).replace("{{xsrf}}", self.xsrf_token.decode())
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # JupyterHub forbids all framing by default; JupyterLab (same origin) shows this page
        # in a tab, so only same-origin framing is allowed.
        self.set_header("Content-Security-Policy", "frame-ancestors 'self'")
        self.finish(html)


def handlers(base_url: str) -> list[tuple[str, type]]:
    """Tornado routes under ``base_url``."""
    root = url_path_join(base_url, "hepml")
    entry = r"(?P<entry_id>[a-z]+(?::|%3[Aa])[-\w.]+)"  # kind:id, the colon maybe escaped
    return [
        (url_path_join(root, "clusters") + "/?", ClustersHandler),
        (url_path_join(root, "clusters", entry), ClustersHandler),
        (url_path_join(root, "notices") + "/?", NoticesHandler),
        (url_path_join(root, "inventory") + "/?", InventoryPageHandler),
    ]

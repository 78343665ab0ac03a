"""JupyterLab in a real browser: the Dask panel on our factory, the inventory, the notices.

A local-backend session (1 core): the Dask panel's "+ NEW" builds a cluster through
``hepml_hub.session.labcluster`` and shows its worker; the inventory page (opened from the
launcher card inside JupyterLab) lists that cluster and shuts it down; a warning posted by
the GPU culler's own client shows up as a JupyterLab notification.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_browser import browser, diagnostics, page, screenshot, wait_for_lab

from hepml_hub.gpu_culler import GpuServer, HubApi

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.root]

__all__ = ["browser", "page"]  # fixtures reused from test_browser

#: Waits in ms: a local cluster starts in a few seconds; the panel polls every few seconds.
CLUSTER_MS = 60_000


def test_dask_panel_inventory_and_notice(hub, users, page, tmp_path):
    name, password = users.create("browser-dask")
    r = hub.spawn(name, {"stack": "cpu", "cores": 1, "memory": 2, "backend": "local"})
    assert r.status_code in (201, 202), r.text
    try:
        with diagnostics(page, hub, tmp_path):
            # Signing in with a running server leads straight to JupyterLab.
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", name)
            page.fill("#password_input", password)
            page.click("#login_submit")
            wait_for_lab(page)
            assert f"/user/{name}/lab" in page.url, page.url

            # The Dask panel: a new cluster through analysis_lib.compute, with its worker.
            page.locator('.lm-TabBar-tab[data-id="dask-dashboard-launcher"]').click()
            manager = page.locator(".dask-DaskClusterManager")
            expect(manager).to_be_visible()
            manager.get_by_role("button", name="NEW").click()
            item = manager.locator(".dask-ClusterListingItem")
            expect(item).to_have_count(1, timeout=CLUSTER_MS)
            expect(item.locator(".dask-ClusterListingItem-title")).to_have_text("LocalCluster 1")
            expect(item).to_contain_text("Number of Workers: 1", timeout=CLUSTER_MS)
            expect(item).to_contain_text("Number of Cores: 1")
            screenshot(page, tmp_path / "dask-panel.png")

            # The inventory, from its launcher card, in a JupyterLab tab.
            page.locator(".jp-LauncherCard", has_text="Dask clusters & jobs").click()
            frame = page.frame_locator(".jp-ServerProxy iframe")
            row = frame.locator('#hepml-inventory tr[data-id^="dask:"]')
            expect(row).to_have_count(1, timeout=CLUSTER_MS)
            expect(row).to_contain_text("LocalCluster 1")
            expect(row).to_contain_text("workers: 1")
            expect(row).to_contain_text("this session")
            screenshot(page, tmp_path / "inventory.png")
            row.get_by_role("button", name="Shut down").click()
            expect(row).to_have_count(0, timeout=CLUSTER_MS)
            expect(frame.locator("#empty")).to_be_visible()

            # The panel (still open on the left) notices the cluster is gone.
            manager.get_by_title("Refresh Cluster List").click()
            expect(item).to_have_count(0, timeout=CLUSTER_MS)

            # A GPU culler warning, posted with the culler's client, shows as a notification.
            message = f"GPUs of {name} idle: this server stops in 5 minutes."
            culler = HubApi(hub.api, hub.url, hub.token)
            culler.warn(GpuServer(name, "", f"/user/{name}/", (0,)), message, "test-notice")
            expect(page.get_by_text(message)).to_be_visible(timeout=CLUSTER_MS)
            screenshot(page, tmp_path / "notice.png")
    finally:
        hub.stop_server(name)

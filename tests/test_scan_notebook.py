"""The scan's live progress in a real Jupyter kernel: an ipywidgets panel, not tqdm."""

from __future__ import annotations

import json

import nbformat
from nbclient import NotebookClient

CELL = """
import tempfile
from distributed import Client, LocalCluster
from analysis_lib.scan import Float, scan
cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
client = Client(cluster)
store = tempfile.mkdtemp()
result = scan(lambda p: (p["x"] - 0.5) ** 2, {"x": Float(0, 1)}, n_trials=4, sampler="random",
              seed=0, store=store, client=client)
client.close(); cluster.close()
print("best", result.best_value)
"""


def test_progress_is_a_widget_in_a_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {
        "path": str(tmp_path)}}).execute()  # fmt: skip
    outputs = nb.cells[0].outputs
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1, outputs
    assert any("best" in o.get("text", "") for o in outputs)
    assert not any("it/s" in o.get("text", "") or "trial/s" in o.get("text", "") for o in outputs)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    labels = [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any("done 4/4" in text and "best" in text for text in labels), labels
    images = [m for m in state.values() if m["model_name"] == "ImageModel"]
    assert images, json.dumps(state)[:500]

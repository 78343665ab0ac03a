"""``device="auto"`` resolves in any thread (Dask runs trials in worker threads)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_auto_device_fit_in_a_worker_thread_of_a_fresh_interpreter():
    # a fresh interpreter: the GPU count must not import modules that only work in the main
    # thread (dask-jobqueue installs signal handlers when imported)
    code = textwrap.dedent(
        """
        import sys, threading
        import numpy as np
        from analysis_lib.training import XGBoostClassifier

        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 3))
        y = (X[:, 0] > 0).astype(int)
        out = {}

        def fit():
            try:
                out["device"] = XGBoostClassifier(n_estimators=5, device="auto").fit(X, y).device_
            except BaseException as err:
                out["error"] = repr(err)

        t = threading.Thread(target=fit)
        t.start()
        t.join()
        print(out)
        sys.exit(0 if "device" in out else 1)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'device': 'cpu'" in proc.stdout or "'device': 'cuda'" in proc.stdout

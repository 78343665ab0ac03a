"""analysis_lib.scan.reuse: the split and XGBoost's binned matrix made once per worker thread.

Every test compares with the plain path (``reuse=False`` or a plain ``fit``): a reused
split or matrix must give the very same trees, and anything that changes the data or the
settings that shape the matrix must make a new one.
"""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
from xgboost import XGBClassifier, XGBRegressor

from analysis_lib.scan import reuse
from analysis_lib.scan.objective import as_objective

PARAMS = [
    {"learning_rate": 0.3, "reg_lambda": 1.0},
    {"learning_rate": 0.1, "reg_lambda": 5.0},
    {"learning_rate": 0.05, "reg_lambda": 0.5},
]


def table(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(np.int32)
    return X, y


def delta(before, after=None):
    after = after or reuse.counts()
    return {k: after[k] - before[k] for k in after if k != "kept"}


@pytest.fixture(autouse=True)
def fresh_cache():
    reuse.clear()
    yield
    reuse.clear()


def model_bytes(model) -> bytes:
    return bytes(model.get_booster().save_raw("ubj"))


def test_trials_reuse_the_split_and_the_matrix_and_fit_the_same_trees():
    X, y = table()
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(y))
    for data in ((X, y), (X, y, w)):
        est = XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1, tree_method="hist")
        on = as_objective(est, scoring="roc_auc", seed=4)
        off = as_objective(est, scoring="roc_auc", seed=4, reuse=False)
        reuse.clear()
        before = reuse.counts()
        for params in PARAMS:
            value, model = on(params, data, None)
            value_off, model_off = off(params, data, None)
            assert value == value_off
            assert model_bytes(model) == model_bytes(model_off)
            np.testing.assert_array_equal(model.predict_proba(X), model_off.predict_proba(X))
            # nothing of the cache stays on the kept model
            assert "_create_dmatrix" not in vars(model)
            again = pickle.loads(pickle.dumps(model))
            np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
        assert delta(before) == {
            "split_hits": 2,
            "split_misses": 1,
            "matrix_hits": 2,
            "matrix_misses": 1,
        }


def test_data_changed_in_place_are_new_data():
    X, y = table(1)
    est = XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1)
    on = as_objective(est, scoring="roc_auc", seed=0)
    off = as_objective(est, scoring="roc_auc", seed=0, reuse=False)
    first = on(PARAMS[0], (X, y), None)[0]
    X[:, 0] *= -1.0  # the same array object, other content
    before = reuse.counts()
    value, model = on(PARAMS[0], (X, y), None)
    assert delta(before)["split_misses"] == 1 and delta(before)["matrix_misses"] == 1
    value_off, model_off = off(PARAMS[0], (X, y), None)
    assert value == value_off and value != first
    assert model_bytes(model) == model_bytes(model_off)


def test_parts_are_read_only_and_made_writable_parts_are_hashed_again():
    X, y = table(2)
    X_tr, X_va, y_tr, y_va = reuse.split_once([X, y], test_size=0.3, seed=1, stratify=True)
    assert not any(p.flags.writeable for p in (X_tr, X_va, y_tr, y_va))
    with pytest.raises(ValueError, match="read-only"):
        X_tr[0, 0] = 1.0
    model = XGBClassifier(n_estimators=5, n_jobs=1)
    before = reuse.counts()
    with reuse.reuse_matrices(model):
        model.fit(X_tr, y_tr)
    X_tr.setflags(write=True)
    X_tr[:, 1] = 0.0
    with reuse.reuse_matrices(model):
        model.fit(X_tr, y_tr)
    assert delta(before)["matrix_misses"] == 2 and delta(before)["matrix_hits"] == 0
    plain = XGBClassifier(n_estimators=5, n_jobs=1).fit(X_tr, y_tr)
    assert model_bytes(model) == model_bytes(plain)


@pytest.mark.parametrize(
    ("first", "second", "hit"),
    [
        ({"max_bin": 64}, {"max_bin": 64, "learning_rate": 0.1}, True),
        ({"max_bin": 64}, {"max_bin": 32}, False),
        ({"missing": np.nan}, {"missing": -999.0}, False),
        ({"n_jobs": 1}, {"n_jobs": 2}, False),
        ({"tree_method": "hist"}, {"tree_method": "exact"}, False),
    ],
)
def test_settings_that_shape_the_matrix_are_part_of_the_key(first, second, hit):
    X, y = table(3)
    X[::7, 2] = -999.0
    before = reuse.counts()
    for settings in (first, second):
        model = XGBClassifier(n_estimators=5, max_depth=2, **settings)
        with reuse.reuse_matrices(model):
            model.fit(X, y)
        plain = XGBClassifier(n_estimators=5, max_depth=2, **settings).fit(X, y)
        assert model_bytes(model) == model_bytes(plain)
    d = delta(before)
    assert (d["matrix_hits"], d["matrix_misses"]) == ((1, 1) if hit else (0, 2))


def test_evaluation_sets_reuse_their_matrix_too():
    X, y = table(4)
    X_va, y_va = table(5, n=500)
    before = reuse.counts()
    models = []
    for rate in (0.3, 0.1):
        model = XGBClassifier(n_estimators=30, learning_rate=rate, early_stopping_rounds=3)
        with reuse.reuse_matrices(model):
            model.fit(X, y, eval_set=[(X_va, y_va)], verbose=False)
        plain = XGBClassifier(n_estimators=30, learning_rate=rate, early_stopping_rounds=3)
        plain.fit(X, y, eval_set=[(X_va, y_va)], verbose=False)
        assert model.best_iteration == plain.best_iteration
        assert model_bytes(model) == model_bytes(plain)
        models.append(model)
    assert delta(before) == {
        "split_hits": 0,
        "split_misses": 0,
        "matrix_hits": 2,
        "matrix_misses": 2,
    }


def test_a_failing_fit_leaves_the_model_clean():
    X, y = table(6)
    model = XGBRegressor(n_estimators=5, objective="no:such-objective")
    with pytest.raises(Exception, match=r"no:such-objective"), reuse.reuse_matrices(model):
        model.fit(X, y)
    assert "_create_dmatrix" not in vars(model)


def test_no_seed_and_other_estimators_take_the_usual_path():
    from sklearn.linear_model import LogisticRegression

    X, y = table(7)
    before = reuse.counts()
    parts = reuse.split_once([X, y], test_size=0.25, seed=None, stratify=True)
    again = reuse.split_once([X, y], test_size=0.25, seed=None, stratify=True)
    assert all(p.flags.writeable for p in parts)
    assert not np.array_equal(parts[0], again[0])  # a new random split each time
    objective = as_objective(LogisticRegression(), scoring="accuracy", seed=0)
    for _ in range(2):
        objective({"C": 1.0}, (X, y), None)
    model = LogisticRegression()
    with reuse.reuse_matrices(model):
        model.fit(X, y)
    assert "_create_dmatrix" not in vars(model)
    assert not reuse.is_xgboost_model(model)
    assert delta(before) == dict.fromkeys(delta(before), 0)


def test_entries_go_with_their_data():
    X, y = table(8)
    content = X.copy()
    reuse.split_once([X, y], test_size=0.25, seed=0, stratify=False)
    before = reuse.counts()
    reuse.split_once([content, y], test_size=0.25, seed=0, stratify=False)
    assert delta(before)["split_hits"] == 1  # the same content, another array: found
    del X, content
    gc.collect()
    X2 = table(8)[0]
    before = reuse.counts()
    reuse.split_once([X2, y], test_size=0.25, seed=0, stratify=False)
    assert delta(before)["split_misses"] == 1  # dropped when its data were collected


def test_at_most_max_entries():
    y = table(9)[1]
    arrays = [table(9 + i)[0] for i in range(reuse.MAX_ENTRIES + 1)]
    for X in arrays:
        reuse.split_once([X, y], test_size=0.25, seed=0, stratify=False)
    before = reuse.counts()
    reuse.split_once([arrays[-1], y], test_size=0.25, seed=0, stratify=False)
    reuse.split_once([arrays[0], y], test_size=0.25, seed=0, stratify=False)
    assert delta(before)["split_hits"] == 1 and delta(before)["split_misses"] == 1


def test_the_library_classifier_reuses_its_matrices_inside_trials_only():
    from analysis_lib.training import XGBoostClassifier

    X, y = table(10)
    w = np.random.default_rng(10).uniform(0.5, 1.5, size=len(y))
    models = []

    def objective(params, data):
        model = XGBoostClassifier(**params, n_estimators=30, n_jobs=1, device="cpu")
        model.fit(data[0], data[1], sample_weight=data[2])
        models.append(model)
        return float(model.predict_proba(data[0])[:, 1].mean())

    before = reuse.counts()
    for params in PARAMS:  # outside a trial: nothing reused
        objective(params, (X, y, w))
    assert delta(before) == dict.fromkeys(delta(before), 0)
    plain, models[:] = list(models), []
    before = reuse.counts()
    for params in PARAMS:  # trials: the training and early-stopping matrices made once
        as_objective(objective)(params, (X, y, w), None)
    assert delta(before) == {
        "split_hits": 0,
        "split_misses": 0,
        "matrix_hits": 4,
        "matrix_misses": 2,
    }
    for model, reference in zip(models, plain, strict=True):
        assert model.best_iteration_ == reference.best_iteration_
        assert model_bytes(model.model_) == model_bytes(reference.model_)
    before = reuse.counts()
    for params in PARAMS:
        as_objective(objective, reuse=False)(params, (X, y, w), None)
    assert delta(before) == dict.fromkeys(delta(before), 0)


def test_estimator_scans_of_the_library_classifier_reuse_the_split_and_matrices():
    from analysis_lib.training import XGBoostClassifier

    X, y = table(11)
    est = XGBoostClassifier(n_estimators=30, n_jobs=1, device="cpu")
    on = as_objective(est, scoring="roc_auc", seed=1)
    off = as_objective(est, scoring="roc_auc", seed=1, reuse=False)
    before = reuse.counts()
    for params in PARAMS:
        value, model = on(params, (X, y), None)
        value_off, model_off = off(params, (X, y), None)
        assert value == value_off
        assert model_bytes(model.model_) == model_bytes(model_off.model_)
    assert delta(before) == {
        "split_hits": 2,
        "split_misses": 1,
        "matrix_hits": 4,
        "matrix_misses": 2,
    }


def test_splits_are_shared_by_threads_matrices_are_not():
    import threading

    X, y = table(12)

    def trial():
        X_tr, _, y_tr, _ = reuse.split_once([X, y], test_size=0.25, seed=0, stratify=False)
        model = XGBClassifier(n_estimators=3, n_jobs=1)
        with reuse.reuse_matrices(model):
            model.fit(X_tr, y_tr)

    done, release = threading.Event(), threading.Event()

    def worker_thread():
        trial()
        done.set()
        release.wait(60)  # alive, with its cache, until the checks below

    before = reuse.counts()
    worker = threading.Thread(target=worker_thread)
    worker.start()
    assert done.wait(60)
    trial()  # this thread: the worker's split, its own matrix
    assert delta(before) == {
        "split_hits": 1,
        "split_misses": 1,
        "matrix_hits": 0,
        "matrix_misses": 2,
    }
    assert reuse.counts()["kept"] == 3  # one split, a matrix in each thread
    reuse.clear(all_threads=True)
    assert reuse.counts()["kept"] == 0
    release.set()
    worker.join()
    before = reuse.counts()
    trial()
    assert delta(before)["split_misses"] == 1 and delta(before)["matrix_misses"] == 1

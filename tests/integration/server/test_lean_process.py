"""The server process imports only what its model needs: pandas for a model that takes a DataFrame,
never for a model on arrays, and scipy.stats for neither (imports.py), whatever protocol the
predictions came through."""

from __future__ import annotations

from pathlib import Path

from support.serverproc import post_json, start_server

IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
SALE = {"region": "north", "price": 12.5, "advertising": 800.0, "store_size": 3}


def pandas_mapped(pid: int) -> bool:
    """True when pandas' compiled modules are mapped into the process: pandas was imported."""
    return "/pandas/_libs/" in Path(f"/proc/{pid}/maps").read_text()


def scipy_stats_mapped(pid: int) -> bool:
    """True when scipy.stats' compiled modules are mapped into the process: it was imported."""
    return "/scipy/stats/_" in Path(f"/proc/{pid}/maps").read_text()


def test_a_model_on_arrays_is_served_without_pandas(iris_bundle: Path) -> None:
    with start_server(iris_bundle) as srv:
        answers = [
            post_json(srv.url("/predict?probabilities=true"), {"instances": [IRIS, IRIS]}),
            post_json(srv.url("/v1/models/iris-classifier:predict"), {"instances": [list(IRIS.values())]}),
            post_json(
                srv.url("/v2/models/iris-classifier/infer"),
                {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": list(IRIS.values())}]},
            ),
        ]
        loaded = pandas_mapped(srv.pid)
        stats = scipy_stats_mapped(srv.pid)
    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert not loaded
    assert not stats


def test_a_dataframe_model_gets_pandas(sales_bundle: Path) -> None:
    with start_server(sales_bundle) as srv:
        status, body = post_json(srv.url("/predict"), SALE)
        loaded = pandas_mapped(srv.pid)
        stats = scipy_stats_mapped(srv.pid)
    assert status == 200, body
    assert loaded
    assert not stats

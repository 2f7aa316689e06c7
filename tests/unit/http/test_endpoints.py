"""Every endpoint against the real app in-process (ASGI), with the demo bundles."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
SALE = {"region": "north", "price": 12.5, "advertising": 800.0, "store_size": 3}


def test_healthz_and_readyz_when_loaded(iris: TestClient) -> None:
    assert iris.get("/healthz").json() == {"status": "ok"}
    r = iris.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "model": "iris-classifier", "version": "1.0.0"}


def test_predict_one_record(iris: TestClient) -> None:
    r = iris.post("/predict", json=SETOSA)
    assert r.status_code == 200, r.text
    assert r.json() == {"model_name": "iris-classifier", "model_version": "1.0.0", "predictions": ["setosa"]}


def test_predict_instances_with_probabilities_labelled_by_class(iris: TestClient) -> None:
    r = iris.post("/predict?probabilities=true", json={"instances": [SETOSA, VIRGINICA]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"] == ["setosa", "virginica"]
    probs = body["probabilities"]
    assert set(probs[0]) == {"setosa", "versicolor", "virginica"}
    assert probs[0]["setosa"] > 0.9 and probs[1]["virginica"] > 0.9
    assert abs(sum(probs[1].values()) - 1.0) < 1e-9


def test_request_id_is_echoed_or_made(iris: TestClient) -> None:
    r = iris.post("/predict", json=SETOSA, headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    # Made: a random prefix for the process, then a counter, so two requests never share one.
    first, second = (iris.get("/healthz").headers["x-request-id"] for _ in range(2))
    assert first != second and first.split("-")[0] == second.split("-")[0]
    assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]+", first), first


def test_sales_pipeline_with_a_string_feature_through_predict(sales: TestClient) -> None:
    resp = sales.post("/predict", json={"instances": [SALE, {**SALE, "price": 45.0}]})
    assert resp.status_code == 200, resp.text
    a, b = resp.json()["predictions"]
    assert isinstance(a, float) and a > b  # higher price, fewer sales (the generated relation)
    west = sales.post("/predict", json={**SALE, "region": "west"}).json()["predictions"][0]
    assert west < a  # the one-hot region matters: west has the lowest base


def test_metrics_endpoint_has_request_and_model_series(iris: TestClient) -> None:
    iris.post("/predict", json=SETOSA)
    text = iris.get("/metrics").text
    assert 'model_server_requests_total{code="200",protocol="named",route="/predict"}' in text
    assert "model_server_model_ready 1.0" in text
    assert 'bundle_name="iris-classifier",bundle_version="1.0.0"' in text
    assert "_created" not in text


def test_docs_show_this_models_fields(iris: TestClient) -> None:
    assert iris.get("/docs").status_code == 200
    spec = iris.get("/openapi.json").json()
    record = spec["components"]["schemas"]["Record"]
    assert list(record["properties"]) == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert record["properties"]["sepal_length"]["type"] == "number"
    assert json.dumps(spec["paths"]["/predict"]["post"]["requestBody"]).count("Record") == 1


def test_docs_page_and_its_files_come_from_this_server(iris: TestClient) -> None:
    page = iris.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: air-gapped clusters
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")):
        assert f'"/docs/static/{asset}"' in page.text
        r = iris.get(f"/docs/static/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 100_000
    assert '"validatorUrl": null' in page.text  # Swagger UI's online validator would send the schema out

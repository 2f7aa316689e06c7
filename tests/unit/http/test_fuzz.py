"""Whatever a client sends, the answer is never a 500: generated bodies against every prediction endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.app import app_client

FEATURES = ["region", "price", "advertising", "store_size", "instances"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from([*FEATURES, "x"]), inner, max_size=5)
    ),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(FEATURES), values, max_size=5)
tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["region", "price", "x"]),
        "shape": st.lists(st.integers(-1, 3), max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "BOOL", "UINT8", "FP99"]),
        "data": values,
    },
)
v2_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(tensor, max_size=4)}, optional={"id": values, "outputs": values, "parameters": values}
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sales_client(sales_bundle: Path) -> Iterator[TestClient]:
    with app_client(sales_bundle, max_request_rows=64) as client:
        yield client


def check(r) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert set(r.json()) == {"error"}


@FUZZ
@given(body=st.one_of(records, values))
def test_predict_never_500(sales_client: TestClient, body: object) -> None:
    check(
        sales_client.post("/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})
    )


@FUZZ
@given(body=st.one_of(st.fixed_dictionaries({"instances": values}), values))
def test_v1_never_500(sales_client: TestClient, body: object) -> None:
    check(
        sales_client.post(
            "/v1/models/sales-regressor:predict",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
    )


@FUZZ
@given(body=v2_bodies, raw=st.binary(max_size=64), header=st.one_of(st.none(), st.integers(-5, 400)))
def test_v2_never_500(sales_client: TestClient, body: dict, raw: bytes, header: int | None) -> None:
    headers = {} if header is None else {"Inference-Header-Content-Length": str(header)}
    check(
        sales_client.post(
            "/v2/models/sales-regressor/infer", content=json.dumps(body).encode() + raw, headers=headers
        )
    )

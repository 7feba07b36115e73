"""An off-the-shelf Open Inference Protocol client (tritonclient's HTTP client) against the server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import Server
from tests.serving.test_predict_api import ROW, ROW2

tritonclient_http = pytest.importorskip("tritonclient.http")

DTYPES = {"geography": "BYTES", "gender": "BYTES", "balance": "FP64", "estimated_salary": "FP64"}


def _inputs(rows: list[dict], *, binary: bool) -> list:
    inputs = []
    for name in ROW:
        datatype = DTYPES.get(name, "INT64")
        values = [r[name] for r in rows]
        arr = (
            np.array(values, dtype=object)
            if datatype == "BYTES"
            else np.array(values, dtype=np.float64 if datatype == "FP64" else np.int64)
        )
        tensor = tritonclient_http.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.fixture
def client(server: Server):
    c = tritonclient_http.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield c
    c.close()


def test_health_and_metadata(client) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    server = client.get_server_metadata()
    assert server["name"] == "modelward" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("churn")
    assert meta["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["age"] == "INT64"
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["geography"] == "BYTES"
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert client.get_model_metadata("churn", model_version="1")["name"] == "churn"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_the_model(client, churn_models: dict, binary: bool) -> None:
    outputs = [
        tritonclient_http.InferRequestedOutput(n, binary_data=binary) for n in ("predict", "predict_proba")
    ]
    result = client.infer("churn", _inputs([ROW, ROW2], binary=binary), outputs=outputs, request_id="oip-1")
    expected = churn_models["logreg"].predict_proba(pd.DataFrame([ROW, ROW2]))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected)
    np.testing.assert_array_equal(result.as_numpy("predict"), expected.argmax(axis=1))
    response = result.get_response()
    assert (
        response["model_name"] == "churn" and response["model_version"] == "1" and response["id"] == "oip-1"
    )


def test_infer_with_default_outputs_and_a_version(client) -> None:
    result = client.infer("churn", _inputs([ROW], binary=True), model_version="1")
    assert result.as_numpy("predict").shape == (1,)
    assert result.as_numpy("predict_proba").shape == (1, 2)


def test_client_errors_arrive_as_readable_messages(client) -> None:
    from tritonclient.utils import InferenceServerException

    bad = _inputs([ROW], binary=False)[1:]  # age is missing
    with pytest.raises(InferenceServerException, match="missing field 'age'"):
        client.infer("churn", bad)
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("nope")

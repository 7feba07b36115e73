"""Models as tutorials log them: MLflow's own ``log_model``, registered through the CLI, served for real.

A test module declares its cases at import time with :func:`compat_case`: a name, a function that
logs the model inside ``mlflow.start_run()`` (the tutorial way) and returns MLflow's ``ModelInfo``,
the reference data and the rows to predict. The session fixture ``compat`` logs every declared case
into one home, registers each with ``modelward register --from-mlflow`` in a subprocess (the CLI, as
a user would), and starts one server for all of them. A case whose registration fails is recorded
with the CLI's message (its test fails with it); the others are served anyway.

Cases pass ``pip_requirements`` to ``log_model``: otherwise MLflow infers them by loading the model
in a subprocess, seconds per model; the rest is as tutorials write it. The session's set-up (every
case logged and registered, one server started) takes a few minutes on a busy machine: compat tests
get a longer timeout than the suite's default.

Helpers for tests that need their own server (a model that must not share one): :func:`log_in_home`,
:func:`register_cli`, :func:`pyfunc_predict`, :func:`rest_predict`, :func:`oip_predict`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import Server, server_env, start_server

__all__ = [
    "Case",
    "Compat",
    "check_against_pyfunc",
    "compat_case",
    "log_in_home",
    "oip_predict",
    "pyfunc_predict",
    "register_cli",
    "rest_predict",
]

CASES: dict[str, Case] = {}

SETUP_TIMEOUT = 900  # seconds: the session fixture registers every case through the CLI


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.timeout(SETUP_TIMEOUT))


@dataclass
class Case:
    """One model as a tutorial logs it.

    ``log`` runs inside an active MLflow run and returns MLflow's ``ModelInfo``; ``reference`` is the
    reference data (features, plus ``target`` when given) written to a CSV for ``--reference``;
    ``rows`` the feature rows to predict; ``args`` extra ``register`` arguments (``--trust ...``).
    """

    name: str
    log: Callable[[], Any]
    reference: pd.DataFrame
    rows: pd.DataFrame
    target: str | None = None
    args: tuple[str, ...] = ()
    uri: str = ""
    registered: subprocess.CompletedProcess[str] | None = None
    failed: str | None = None  # logging it failed: the test says why

    @property
    def ok(self) -> bool:
        return self.registered is not None and self.registered.returncode == 0

    def require(self) -> None:
        """Fail the test with the CLI's own words when the case did not register."""
        if self.registered is None:
            pytest.fail(f"{self.name} was not logged: {self.failed}")
        if self.registered.returncode != 0:
            pytest.fail(
                f"modelward register {self.name} exited {self.registered.returncode}:\n"
                f"{self.registered.stdout}\n{self.registered.stderr}"
            )


def compat_case(
    name: str,
    log: Callable[[], Any],
    reference: pd.DataFrame,
    rows: pd.DataFrame,
    *,
    target: str | None = None,
    args: tuple[str, ...] = (),
) -> Case:
    """Declare a case (at module import): logged, registered and served by the ``compat`` fixture."""
    if name in CASES:
        raise ValueError(f"compat case {name!r} is declared twice")
    case = Case(name, log, reference, rows, target, args)
    CASES[name] = case
    return case


# -- data: small, so the suite stays fast -------------------------------------------------------------


def numeric_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Four numeric features and a binary ``label`` that depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(np.float64),
            "income": rng.normal(50_000, 15_000, n).round(2),
            "tenure": rng.integers(0, 20, n).astype(np.float64),
            "score": rng.random(n).round(4),
        }
    )
    logit = (frame["age"] - 45) / 10 + (frame["score"] - 0.5) * 4 - frame["tenure"] / 10
    frame["label"] = (logit + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    return frame


def mixed_frame(n: int = 300, seed: int = 1) -> pd.DataFrame:
    """Numeric and string features, for pipelines with a ColumnTransformer."""
    frame = numeric_frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    frame.insert(4, "city", rng.choice(["Paris", "Berlin", "Madrid"], n))
    return frame


# -- MLflow in the test process ----------------------------------------------------------------------


def tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


@contextlib.contextmanager
def home_tracking(home: Path) -> Iterator[None]:
    """MLflow's fluent API on the home's tracking store for the block, and afterwards exactly as
    before. ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in the environment, which
    modelward's settings read before their default and every server a later test starts inherits:
    restoring ``get_tracking_uri()``'s answer would leave it set (to ``./mlflow.db``) for the rest of
    the session, so the variable's own previous value (usually none) is what is restored."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri(home))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None unsets the variable


def log_in_home(home: Path, log: Callable[[], Any]) -> str:
    """Run ``log`` inside ``mlflow.start_run()`` against the home's tracking store; the model's URI
    (``runs:/RUN/model`` when logged under the name "model", else MLflow's ``models:/m-...``)."""
    import mlflow

    with home_tracking(home), mlflow.start_run() as run:
        info = log()
    name = getattr(info, "name", None) or getattr(info, "artifact_path", None)
    return f"runs:/{run.info.run_id}/model" if name == "model" else str(info.model_uri)


def pyfunc_predict(home: Path, uri: str, rows: pd.DataFrame) -> np.ndarray:
    """What ``mlflow.pyfunc.load_model(uri).predict(rows)`` answers, as an array."""
    import mlflow.pyfunc

    from modelward.registry.flavors import allow_mlflow_deserialization

    with home_tracking(home), allow_mlflow_deserialization():
        out = mlflow.pyfunc.load_model(uri).predict(rows)
    arr = np.asarray(out)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def register_cli(
    home: Path, uri: str, name: str, reference: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``modelward register --from-mlflow URI --name NAME --reference CSV ...`` in a subprocess."""
    return run_cli(
        home, "register", "--from-mlflow", uri, "--name", name, "--reference", str(reference), *args
    )


def run_cli(
    home: Path, *args: str, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelward", *args],
        env=server_env(home),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the served side ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def rest_predict(server: Server, name: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The REST answer's ``predictions`` for ``rows`` sent as records."""
    records = [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict(orient="records")]
    r = httpx.post(f"{server.url}/models/{name}/predict", json={"instances": records}, timeout=60)
    assert r.status_code == 200, r.text
    return list(r.json()["predictions"])


_OIP_TYPES = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}


def oip_predict(server: Server, name: str, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The Open Inference Protocol answer (tritonclient's HTTP client), one input tensor per column."""
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        inputs = []
        for column in rows.columns:
            values = rows[column].to_numpy()
            datatype = _OIP_TYPES.get(values.dtype.kind, "BYTES")
            if datatype == "FP64":
                values = values.astype(np.float64)
            elif datatype == "INT64":
                values = values.astype(np.int64)
            elif datatype == "BYTES":
                values = values.astype(object)
            tensor = http.InferInput(str(column), [len(rows)], datatype)
            tensor.set_data_from_numpy(values, binary_data=False)
            inputs.append(tensor)
        result = client.infer(name, inputs)
        return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}
    finally:
        client.close()


def assert_values_match(served: Any, expected: np.ndarray) -> None:
    """Labels equal, numbers close (the compiled runtime may differ in the last bits)."""
    got = np.asarray(served)
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=1e-4, atol=1e-5)
    else:
        assert [str(v) for v in got.tolist()] == [str(v) for v in expected.tolist()]


def check_against_pyfunc(compat: Compat, name: str, expected: np.ndarray | None = None) -> None:
    """The served predictions over REST and OIP equal ``mlflow.pyfunc``'s on the case's rows
    (``expected``: pyfunc's answer reduced to one value per row, when it gives several)."""
    case = compat.case(name)
    if expected is None:
        expected = pyfunc_predict(compat.home, case.uri, case.rows)
    served = rest_predict(compat.served(), name, case.rows)
    assert_values_match([p["prediction"] for p in served], expected)
    assert_values_match(oip_predict(compat.served(), name, case.rows)["predict"], expected)


# -- the session: one home, one server --------------------------------------------------------------


@dataclass
class Compat:
    home: Path
    server: Server | None
    cases: dict[str, Case] = field(default_factory=dict)

    def case(self, name: str) -> Case:
        case = self.cases[name]
        case.require()
        return case

    def served(self) -> Server:
        if self.server is None:
            pytest.fail("no compat model registered, so no server was started")
        return self.server


@pytest.fixture(scope="session")
def compat_home(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Path:
    """An empty modelward home whose MLflow store is the one the tutorials' code logs into."""
    home = tmp_path_factory.mktemp("compat-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    return home


@pytest.fixture(scope="session")
def compat(compat_home: Path, request: pytest.FixtureRequest) -> Iterator[Compat]:
    """Every declared case logged, registered through the CLI and served by one server."""
    wanted = {item.module.__name__ for item in request.session.items if item.module is not None}
    cases = {n: c for n, c in CASES.items() if c.log.__module__ in wanted}
    for name, case in cases.items():
        try:
            case.uri = log_in_home(compat_home, case.log)
        except Exception as exc:  # one case's library failing must not stop the others
            case.failed = f"{type(exc).__name__}: {exc}"
            continue
        reference = compat_home / f"{name}-reference.csv"
        case.reference.to_csv(reference, index=False)
        target = ("--target", case.target) if case.target else ()
        case.registered = register_cli(compat_home, case.uri, name, reference, *target, *case.args)
    names = [n for n, c in cases.items() if c.ok]
    server = start_server(compat_home, *names, "--reload-interval", "0", timeout=180) if names else None
    try:
        yield Compat(compat_home, server, cases)
    finally:
        if server is not None:
            server.stop()

"""Settings, read from the environment (prefix ``MODELWARD_``) by the CLI and app factories only.

Library code never reads the environment: it is handed a :class:`Settings` (or the values in it).
"""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where modelward keeps its state and how it behaves.

    Defaults give the embedded set-up: everything under ``./.modelward`` (SQLite + local files).
    """

    model_config = SettingsConfigDict(env_prefix="MODELWARD_", extra="ignore", frozen=True)

    home: Path = Field(default=Path(".modelward"), description="folder for the embedded state")
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry URI; MLFLOW_TRACKING_URI wins over the default",
    )
    artifact_location: str | None = Field(
        default=None, description="where new MLflow experiments keep artifacts (default <home>/artifacts)"
    )
    database_url: str | None = Field(
        default=None, description="modelward's own database (default sqlite:///<home>/modelward.db)"
    )
    experiment: str = Field(default="modelward", description="MLflow experiment used by register()")
    actor: str | None = Field(default=None, description="who is acting, recorded in the audit trail")
    trusted_types: tuple[str, ...] = Field(
        default=(),
        description="extra fully-qualified types trusted when loading skops models, beyond the reviewed list",
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)

    # -- serving -------------------------------------------------------------------------------------
    admin_token: SecretStr | None = Field(
        default=None, description="bearer token for admin routes; required to bind a non-loopback address"
    )
    predict_token: SecretStr | None = Field(
        default=None, description="bearer token for prediction routes (optional: open when unset)"
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    max_rows: int = Field(default=10_000, ge=1, description="rows per prediction request")
    reload_interval: float = Field(
        default=5.0, ge=0, description="seconds between alias checks for hot reload; 0 turns polling off"
    )
    serve_models: tuple[str, ...] = Field(
        default=(), description="models served by worker processes (set by `modelward serve`)"
    )
    load_before_accept: bool = Field(
        default=False,
        description="load every model before taking connections (set by `modelward serve --workers N`)",
    )
    prediction_log: bool = Field(default=True, description="log every prediction to the store")
    log_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0, description="share of predictions logged")
    log_redact: str = Field(default="", description='per-field redaction, e.g. "email=drop,phone=hash"')
    log_salt: str = Field(default="", description="salt for hashed fields in the prediction log")
    log_capacity: int = Field(default=10_000, ge=1, description="prediction log queue; beyond it, drops")
    log_process: bool = Field(
        default=True,
        description="write the prediction log from a process of its own (false: a thread of the server)",
    )
    alerts_file: Path | None = Field(
        default=None, description="alert rules and notifiers, YAML or JSON (docs/alerts.md); unset: defaults"
    )
    alerts_allow_private: bool = Field(
        default=False, description="let webhooks reach loopback and private addresses (never link-local)"
    )
    batching: bool = Field(default=True, description="coalesce concurrent requests into one predict call")
    max_batch_rows: int = Field(default=256, ge=1, description="rows per coalesced predict call")
    batch_budget_ms: float = Field(
        default=1000.0,
        gt=0,
        description="a request that would be answered later than this after it arrived gets 503",
    )
    compile: bool = Field(default=True, description="serve models compiled to ONNX when they match")
    fast_path: bool = Field(default=True, description="answer REST predictions in raw ASGI, before FastAPI")
    controller: bool = Field(default=True, description="run the canary and monitoring controller in serve")
    controller_interval: float = Field(default=5.0, gt=0, description="seconds between controller ticks")
    live_profiles: bool = Field(default=True, description="profile served rows per minute for live drift")
    profile_bucket_seconds: float = Field(
        default=60.0, gt=0, description="length of a live profile bucket (the finest drift window)"
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_tracking_uri(self) -> str:
        """An explicit setting wins, then ``MLFLOW_TRACKING_URI``, then SQLite under home."""
        if self.tracking_uri:
            return self.tracking_uri
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def resolved_artifact_location(self) -> str:
        if self.artifact_location:
            return self.artifact_location
        return (self.home / "artifacts").as_uri()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'modelward.db'}"

    @property
    def resolved_actor(self) -> str:
        if self.actor:
            return self.actor
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return f"{user}@{socket.gethostname()}"

    def ensure_home(self) -> Path:
        """Create the home folder when the embedded defaults need it."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

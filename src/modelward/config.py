"""Settings, read from the environment (prefix ``MODELWARD_``) by the CLI and app factories only.

Library code never reads the environment: it is handed a :class:`Settings` (or the values in it).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelward.durations import UNITS

__all__ = ["Settings", "parse_log_retention"]

# -- prediction log retention: "7d", "20GB", "7d,20GB" -----------------------------------------------
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_RETENTION_PART = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_log_retention(text: str) -> tuple[float | None, int | None]:
    """``MODELWARD_LOG_RETENTION`` as (maximum age in seconds, maximum size in bytes), None for a
    limit not given: an age (``30m``, ``12h``, ``7d``, ``2w``), a size (``500MB``, ``20GB``, ``1TB``;
    ``KiB`` ... ``TiB`` for powers of 1024), or both separated by a comma. Empty or ``off``: none."""
    age: float | None = None
    size: int | None = None
    if text.strip().lower() in ("", "off", "none"):
        return None, None
    for part in text.split(","):
        match = _RETENTION_PART.match(part)
        unit = match.group(2).lower() if match else ""
        if match is None or (unit not in UNITS and unit not in _SIZE_UNITS):
            raise ValueError(
                f"cannot read {part.strip()!r} as a retention limit: use an age such as 7d or 12h, a size "
                "such as 20GB or 500MiB, or both: 7d,20GB"
            )
        value = float(match.group(1))
        if value <= 0:
            raise ValueError(f"a retention limit must be positive, not {part.strip()!r}")
        if unit in UNITS:
            if age is not None:
                raise ValueError(f"two ages in the retention {text!r}: give at most one age and one size")
            age = value * UNITS[unit]
        else:
            if size is not None:
                raise ValueError(f"two sizes in the retention {text!r}: give at most one age and one size")
            size = int(value * _SIZE_UNITS[unit])
    return age, size


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
        default=None,
        description="where new MLflow experiments keep artifacts (default <home>/artifacts; with an "
        "http(s) tracking server, the server's own artifact store)",
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
    explain_max_rows: int = Field(default=100, ge=1, description="rows per explain request (413 beyond)")
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
    log_redact: str = Field(
        default="",
        description='redaction of logged inputs by field and by PII kind, e.g. "email=drop,phone=hash,'
        'kind:card=drop,kind:email=hash" (docs/privacy.md)',
    )
    log_redact_secret: SecretStr | None = Field(
        default=None,
        description="key of hashed redaction (HMAC-SHA256); unset: a random key kept in <home>/redact-secret",
    )
    log_salt: str = Field(default="", description="older name of log_redact_secret, used when that is unset")
    pii_on_register: Literal["warn", "refuse", "off"] = Field(
        default="warn",
        description="what `register` does when its training data holds PII: warn, refuse, or off (no scan); "
        "a model's policy `pii: refuse` refuses too",
    )
    log_capacity: int = Field(default=10_000, ge=1, description="prediction log queue; beyond it, drops")
    log_process: bool = Field(
        default=True,
        description="write the prediction log from a process of its own (false: a thread of the server)",
    )
    log_retention: str = Field(
        default="",
        description="delete logged predictions older than an age and/or beyond a size: 7d, 20GB or "
        "7d,20GB (docs/prediction-log.md); empty keeps everything",
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
    tracing: bool = Field(
        default=False,
        description="OpenTelemetry traces of predictions (tracing extra), configured by OTEL_* variables",
    )
    tracing_phases: Literal["events", "spans"] = Field(
        default="events", description="a traced request's phases as events of its span, or as child spans"
    )
    controller: bool = Field(default=True, description="run the canary and monitoring controller in serve")
    controller_interval: float = Field(default=5.0, gt=0, description="seconds between controller ticks")
    controller_lease_ttl: float | None = Field(
        default=None,
        gt=0,
        description="seconds the controller lease stays valid without renewal: how long a crashed holder "
        "blocks the others (default: 3 intervals, at least 15 s; must exceed one interval)",
    )
    monitor_interval: float = Field(
        default=60.0, gt=0, description="seconds between the monitor's evaluations of the alert rules"
    )
    live_profiles: bool = Field(default=True, description="profile served rows per minute for live drift")
    profile_bucket_seconds: float = Field(
        default=60.0, gt=0, description="length of a live profile bucket (the finest drift window)"
    )

    # -- consent (docs/privacy.md "Consent and erasure") --------------------------------------------
    consent_header: str = Field(
        default="X-Consent", pattern=r"^[A-Za-z0-9-]+$", description="request header carrying consent"
    )
    consent_field: str = Field(
        default="consent", min_length=1, description="top-level body member carrying consent"
    )
    consent_default: bool = Field(default=True, description="consent of a request that does not say")
    consent_without: Literal["skip", "redact"] = Field(
        default="skip",
        description="without consent: skip (inputs not logged) or redact (logged through log_redact)",
    )

    # -- connections (per worker; docs/serving.md "Connections") ------------------------------------
    max_connections: int = Field(
        default=2048, ge=1, description="open connections per worker; beyond it a new one gets 503 and closes"
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="request line and headers; a larger block gets 431"
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds a request's line and headers may take, from its first byte"
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="seconds a request's body may take, from the end of its headers"
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, description="seconds a connection may wait idle for its next request"
    )
    worker_healthcheck_timeout: int = Field(
        default=30,
        ge=1,
        description="seconds a worker of `serve --workers N` may take to answer the supervisor's health "
        "check before it is killed and restarted (a worker compiling a model can hold its interpreter "
        "for seconds)",
    )

    @field_validator("admin_token", "predict_token", "log_redact_secret", mode="after")
    @classmethod
    def _no_empty_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # An empty token would pass "is a token set?" checks while matching no client (or every one):
        # the admin token guards non-loopback binds, the predict token decides whether predict is open.
        if value is not None and not value.get_secret_value().strip():
            name = f"MODELWARD_{str(info.field_name).upper()}"
            raise ValueError(f"{name} is set but empty: give it a value, or unset it")
        return value

    @field_validator("log_retention", mode="after")
    @classmethod
    def _valid_retention(cls, value: str) -> str:
        parse_log_retention(value)
        return value

    @model_validator(mode="after")
    def _lease_outlives_a_tick(self) -> Settings:
        ttl = self.controller_lease_ttl
        if ttl is not None and not ttl > self.controller_interval:
            raise ValueError(
                f"MODELWARD_CONTROLLER_LEASE_TTL ({ttl:g} s) must be longer than "
                f"MODELWARD_CONTROLLER_INTERVAL ({self.controller_interval:g} s), or the lease lapses "
                "between the holder's renewals"
            )
        return self

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
    def resolved_artifact_location(self) -> str | None:
        """An explicit setting wins; with a tracking server (``http(s)://``) None, so that new
        experiments keep their artifacts where the server says (``--artifacts-destination``: shared
        by every replica, S3 or another object store); else ``<home>/artifacts``."""
        if self.artifact_location:
            return self.artifact_location
        if self.resolved_tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.home / "artifacts").as_uri()

    @property
    def resolved_controller_lease_ttl(self) -> float:
        if self.controller_lease_ttl is not None:
            return self.controller_lease_ttl
        return max(15.0, 3 * self.controller_interval)

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

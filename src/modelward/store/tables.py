"""modelward's own tables (SQLAlchemy Core). MLflow keeps models, versions, aliases and runs;
these tables keep what MLflow does not: the audit chain, artifact pins, alias history, the
prediction log, deployments (traffic specs) and their history, leases, ground-truth feedback, live
profiles and alerts.

Every change here needs a migration in ``store/migrations/versions`` (a test compares the two).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    true,
)

__all__ = [
    "alert_events",
    "alerts",
    "alias_events",
    "artifact_files",
    "audit_events",
    "deployment_history",
    "deployments",
    "feedback",
    "leases",
    "live_profiles",
    "log_state",
    "log_writers",
    "metadata",
    "model_policies",
    "predictions",
    "retrain_runs",
    "rollouts",
    "version_notes",
    "version_reports",
]

# Constraint names are fixed so migrations are portable between SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

# The hash covers seq, ts, actor, action, subject and payload exactly as stored, so ts and payload are
# text: their bytes must round-trip unchanged through every backend.
audit_events = Table(
    "modelward_audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_modelward_audit_events_subject", audit_events.c.subject)

artifact_files = Table(
    "modelward_artifact_files",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger(), nullable=False),
)

# One row per alias move made through modelward; replaying them gives the stack that rollback pops.
alias_events = Table(
    "modelward_alias_events",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("alias", String(256), nullable=False),
    Column("kind", String(16), nullable=False),  # promote | rollback
    Column("version", String(32), nullable=True),  # the holder after this event (None: alias removed)
    Column("previous_version", String(32), nullable=True),  # the holder before it
    Column("ts", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text(), nullable=True),
)
Index("ix_modelward_alias_events_model_alias", alias_events.c.model, alias_events.c.alias)

# One row per logged prediction (modelward.monitoring.prediction_log). ts is UNIX epoch seconds (UTC);
# inputs and outputs are JSON objects with sorted keys. Rows are append-only; id orders them.
# ``arm`` names the deployment arm that answered ("shadow" for mirrored traffic, which never reached
# the client); ``error`` holds the model's failure message when it raised (outputs is then {}).
predictions = Table(
    "modelward_predictions",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    Column("ts", Float(), nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", String(32), nullable=False),
    Column("arm", String(64), nullable=True),
    Column("routing_key", String(256), nullable=True),
    Column("inputs", Text(), nullable=False),
    Column("outputs", Text(), nullable=False),
    Column("latency_ms", Float(), nullable=False),
    Column("error", Text(), nullable=True),
    # False: the request did not consent to keeping its inputs (logged without them, or redacted);
    # such rows are never exported for retraining.
    Column("consent", Boolean(), nullable=False, server_default=true()),
)
Index("ix_modelward_predictions_model_ts", predictions.c.model, predictions.c.ts)
Index("ix_modelward_predictions_request_id", predictions.c.request_id)

# One row per prediction log writer (a server process's PredictionLogger), for the accounting of what
# a crash loses (modelward.monitoring.log_marks): ``written``, ``repaired`` and ``rejected`` grow in
# the transaction that inserts each batch, so they are exact whatever happens after; the other counts
# are the writer's as of its last batch, then its final ones when it closes or is found dead.
# ``state`` is running, closed (it closed its log) or crashed (found dead; ``lost`` its loss).
log_writers = Table(
    "modelward_log_writers",
    metadata,
    Column("writer", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("started_at", Float(), nullable=False),
    Column("updated_at", Float(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("announced", BigInteger(), nullable=False),
    Column("produced", BigInteger(), nullable=False),
    Column("written", BigInteger(), nullable=False),
    Column("dropped", BigInteger(), nullable=False),
    Column("sampled_out", BigInteger(), nullable=False),
    Column("repaired", BigInteger(), nullable=False),
    Column("rejected", BigInteger(), nullable=False),
    Column("lost", BigInteger(), nullable=True),
    Column("ended_at", Float(), nullable=True),
)
Index("ix_modelward_log_writers_state", log_writers.c.state)

# Named counters and figures of the prediction log's upkeep (retention's deleted rows by reason, the
# figures its size estimate keeps between runs): one row per name.
log_state = Table(
    "modelward_log_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Float(), nullable=False),
    Column("updated_at", Float(), nullable=False),
)

# The traffic spec of each model (modelward.routing.DeploymentSpec as JSON). ``revision`` grows by one
# with every change; servers poll it and swap in the new routing. Every revision is also kept in
# deployment_history, and audited.
deployments = Table(
    "modelward_deployments",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("revision", Integer(), nullable=False),
    Column("spec", Text(), nullable=False),
    Column("updated_at", Float(), nullable=False),
    Column("actor", String(200), nullable=False),
)

deployment_history = Table(
    "modelward_deployment_history",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("revision", Integer(), primary_key=True, autoincrement=False),
    Column("spec", Text(), nullable=False),
    Column("ts", Float(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text(), nullable=True),
)

# A named lease (e.g. "controller"): one holder at a time until expires_at (UNIX seconds).
leases = Table(
    "modelward_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", Float(), nullable=False),
    Column("expires_at", Float(), nullable=False),
)

# Ground truth, one row per request id (idempotent). ``label`` is the JSON of the value as sent
# (a class label or a number); ``value`` its numeric form when it has one. ``model`` is the model of
# the joined prediction when known at ingestion (None for an orphan at that time).
feedback = Table(
    "modelward_feedback",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("label", Text(), nullable=False),
    Column("value", Float(), nullable=True),
    Column("model", String(256), nullable=True),
    Column("ts", Float(), nullable=False),
    Column("updated_at", Float(), nullable=False),
    Column("source", String(64), nullable=True),
)
Index("ix_modelward_feedback_model_ts", feedback.c.model, feedback.c.ts)

# Live window profiles: one row per (model, version, arm, time bucket, writer) with a DatasetProfile
# observed on the reference's edges (JSON). A window is the merge of its buckets' rows, over every
# worker and replica.
live_profiles = Table(
    "modelward_live_profiles",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("version", String(32), nullable=False),
    Column("arm", String(64), nullable=True),
    Column("bucket", Float(), nullable=False),  # start of the bucket, UNIX seconds
    Column("seconds", Float(), nullable=False),  # bucket length
    Column("writer", String(200), nullable=False),  # host:pid of the process that observed it
    Column("rows", Integer(), nullable=False),
    Column("profile", Text(), nullable=False),
)
Index("ix_modelward_live_profiles_model_bucket", live_profiles.c.model, live_profiles.c.bucket)

# Alerts: one row per alert (rule + subject), its current state; alert_events keeps the history of
# firing, repeats and resolutions, and of each notification attempt.
alerts = Table(
    "modelward_alerts",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("rule", String(200), nullable=False),
    Column("model", String(256), nullable=True),
    Column("subject", String(500), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # firing | resolved | superseded
    Column("message", Text(), nullable=False),
    Column("value", Float(), nullable=True),
    Column("first_fired_at", Float(), nullable=False),
    Column("last_fired_at", Float(), nullable=False),
    Column("resolved_at", Float(), nullable=True),
    Column("last_notified_at", Float(), nullable=True),
)

alert_events = Table(
    "modelward_alert_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # fire | repeat | resolve | supersede | notify
    Column("ts", Float(), nullable=False),
    Column("message", Text(), nullable=False),
    Column("notifier", String(200), nullable=True),
    Column("delivered", Boolean(), nullable=True),
    Column("detail", Text(), nullable=True),
)
Index("ix_modelward_alert_events_fingerprint", alert_events.c.fingerprint)

# Governance results kept with a version: one row per report (kind: fairness, validation, card,
# importance, pii, ...), newest by id. ``body`` is the report's JSON as its module writes it; the
# modules in ``modelward.governance`` own each kind's shape.
version_reports = Table(
    "modelward_version_reports",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("version", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("created_at", Float(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("body", Text(), nullable=False),
)
Index(
    "ix_modelward_version_reports_model_version_kind",
    version_reports.c.model,
    version_reports.c.version,
    version_reports.c.kind,
)

# A model's promotion policy (``modelward policy set``): the YAML as the user wrote it, validated when
# stored.
model_policies = Table(
    "modelward_model_policies",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("body", Text(), nullable=False),
    Column("updated_at", Float(), nullable=False),
    Column("actor", String(200), nullable=False),
)

# What a version is for and where it must not be used (model cards), editable after registration.
version_notes = Table(
    "modelward_version_notes",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("intended_use", Text(), nullable=True),
    Column("limitations", Text(), nullable=True),
    Column("updated_at", Float(), nullable=False),
    Column("actor", String(200), nullable=False),
)

# Retraining runs (``modelward.control`` retraining): one row per trigger acted on, its outcome and
# duration. ``running`` holds the model's name while the run is in progress and NULL once it ends: the
# unique constraint lets only one run per model be in progress, across replicas and backends.
retrain_runs = Table(
    "modelward_retrain_runs",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("trigger", String(32), nullable=False),  # drift, performance, estimated, schedule, manual
    Column("reason", Text(), nullable=False),
    Column("figures", Text(), nullable=False),  # JSON: what the trigger saw
    Column("status", String(16), nullable=False),  # running, succeeded, failed, timed_out
    Column("holder", String(200), nullable=False),
    Column("started_at", Float(), nullable=False),
    Column("finished_at", Float(), nullable=True),
    Column("exit_code", Integer(), nullable=True),
    Column("output", Text(), nullable=True),  # the action's output, its tail when long
    Column("detail", Text(), nullable=True),  # JSON: export path, webhook status, error
    Column("running", String(256), nullable=True, unique=True),
)
Index("ix_modelward_retrain_runs_model_started_at", retrain_runs.c.model, retrain_runs.c.started_at)

# The automatic rollout of a new version (policy ``rollout:``): one row per version, inserted by the
# controller that takes it up (the primary key makes that once across replicas) and updated as it goes
# (validating, rejected, canary, promoted, rolled_back, failed).
rollouts = Table(
    "modelward_rollouts",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("detail", Text(), nullable=True),  # JSON
    Column("created_at", Float(), nullable=False),
    Column("updated_at", Float(), nullable=False),
    Column("holder", String(200), nullable=False),
)

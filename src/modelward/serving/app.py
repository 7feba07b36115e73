"""The app factory: ``create_app(settings, models)`` builds a FastAPI app with nothing global.

Start-up (the lifespan) loads and warms every served model, starts the prediction log writer and the
alias watcher. On SIGTERM readiness turns false at once; the server then stops accepting connections
and lets in-flight requests finish before the writer flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelward import __version__
from modelward.config import Settings
from modelward.errors import ConfigError
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.monitoring.metrics import ServingMetrics
from modelward.monitoring.prediction_log import PredictionLogger, Redactor
from modelward.monitoring.unseen_categories import UnseenCategories
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, Policy, check_route_policies, guard
from modelward.serving.docs_routes import add_docs_routes
from modelward.serving.fastpath import FastPredict
from modelward.serving.lane import FastLane

if TYPE_CHECKING:
    from modelward.control.controller import Controller
from modelward.serving.middleware import BodyLimit, RequestContext
from modelward.serving.models import BatchSettings, ModelManager
from modelward.serving.postprocess import PostProcessor
from modelward.serving.predict import Predictor
from modelward.serving.problems import (
    ModelNotServed,
    install_problem_handlers,
    json_response,
    problem_response,
)
from modelward.serving.rest import add_rest_routes
from modelward.serving.tracing import Tracing, load_tracing
from modelward.serving.v2 import add_v2_routes
from modelward.store import Store
from modelward.validation import ConsentRule

__all__ = ["ModelwardApp", "create_app", "create_app_from_env"]

log = logging.getLogger("modelward.serving")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


class ModelwardApp(FastAPI):
    """FastAPI, with the REST prediction fast path in front of everything (FastAPI's own middleware
    stack included): a request it takes never enters the framework."""

    fast: FastPredict | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast
        if fast is not None:
            name = fast.match(scope)
            if name is not None:
                await fast.handle(name, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def consent_rule(settings: Settings) -> ConsentRule:
    """Where requests carry consent, as the settings say; refuses a redaction of requests without
    consent that has no rules (their inputs would be logged as sent)."""
    if settings.consent_without == "redact" and not settings.log_redact.strip():
        raise ConfigError(
            "MODELWARD_CONSENT_WITHOUT=redact logs the inputs of requests without consent through "
            "MODELWARD_LOG_REDACT, which has no rules: set them, or use MODELWARD_CONSENT_WITHOUT=skip"
        )
    return ConsentRule(settings.consent_header, settings.consent_field, settings.consent_default)


def create_app(
    settings: Settings,
    models: Sequence[str] = (),
    *,
    registry: Registry | None = None,
    metrics: ServingMetrics | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """A server for ``models`` (references such as ``churn`` or ``churn@challenger``; all registered
    models when empty). The registry is opened here to read each model's signature for the docs.
    ``tracing``: the predictions' tracer (default: one configured from ``OTEL_*`` when
    ``settings.tracing``)."""
    if tracing is None and settings.tracing:
        tracing = load_tracing(settings.tracing_phases)
    registry = registry or Registry.from_settings(settings).open()
    refs = list(models) or [m.name for m in registry.models()]
    metrics = metrics or ServingMetrics()
    batching = BatchSettings(
        enabled=settings.batching,
        max_rows=settings.max_batch_rows,
        budget=settings.batch_budget_ms / 1000,
        compile=settings.compile,
        cache_dir=settings.home / "compiled",
    )
    manager = ModelManager(registry, refs, metrics, batching=batching)
    logger: PredictionLogger | None = None
    profiler: LiveProfiler | None = None
    # Monitoring writes (prediction log, live profiles) share one store that syncs at checkpoints.
    store = Store(settings.resolved_database_url, busy_timeout_ms=1000, power_safe=False)
    # Built before the log and the live profiles: both see inputs only after redaction.
    redactor = Redactor.from_settings(settings)
    if settings.live_profiles:
        profiler = LiveProfiler(
            store,
            bucket_seconds=settings.profile_bucket_seconds,
            on_unseen=UnseenCategories(metrics.registry),
            redactor=redactor if redactor.active else None,
        )
    if settings.prediction_log:
        logger = PredictionLogger(
            store,
            capacity=settings.log_capacity,
            sample_rate=settings.log_sample_rate,
            redactor=redactor,
            on_produced=metrics.log_produced,
            on_written=metrics.log_written,
            on_dropped=metrics.log_dropped,
            on_repaired=metrics.log_repaired,
            on_rejected=metrics.log_rejected,
            on_lost=metrics.log_lost,
            process=settings.log_process,
            marks_dir=settings.home / "log-writers",
        )
    post = PostProcessor(capacity=settings.log_capacity, on_dropped=metrics.postprocess_dropped)
    observer = profiler.observe if profiler is not None else None
    consent = consent_rule(settings)
    predictor = Predictor(
        manager, metrics, logger, post=post, observer=observer, without_consent=settings.consent_without
    )
    post.after_burst = predictor.flush
    manager.on_batch = predictor.record_batch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        restore = _drain_on_sigterm(app)
        if logger is not None or profiler is not None:
            store.open()
            store.migrate()
        if logger is not None:
            logger.start()
        if profiler is not None:
            profiler.start()
        post.start()
        controller = _start_controller(settings, manager, metrics) if settings.controller else None
        # Load in the background: the port opens at once, /ready and predictions answer 503 until loaded.
        # Workers sharing a port load first instead: uvicorn serves only after start-up, so a worker
        # that is still loading takes no connections while its siblings answer (a probe of /ready
        # reaches one worker, not all of them).
        loading = asyncio.create_task(manager.load_all(quick=True))
        loading.add_done_callback(partial(_warm_dashboard, app))
        settling = asyncio.create_task(_settle_then_freeze(manager, loading))
        watcher = (
            asyncio.create_task(manager.watch(settings.reload_interval))
            if settings.reload_interval > 0
            else None
        )
        try:
            if settings.load_before_accept:
                await loading  # inside the try: stopped while loading, everything is still closed
            yield
        finally:
            app.state.draining = True
            loading.cancel()
            settling.cancel()
            if watcher is not None:
                watcher.cancel()
            if controller is not None:
                controller[1].cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await controller[1]
                controller[0].registry.close()
            await predictor.close()
            await asyncio.to_thread(post.close, 10.0)
            manager.close()
            if profiler is not None:
                await asyncio.to_thread(profiler.close)
            if logger is not None:
                await asyncio.to_thread(logger.close, 10.0)
            store.close()
            if tracing is not None:
                await asyncio.to_thread(tracing.close)
            restore()

    app = ModelwardApp(
        title="modelward",
        version=__version__,
        description="Predictions from registered models. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        default_response_class=Response,
        docs_url=None,  # /docs and /redoc are served offline by docs_routes
        redoc_url=None,
        # modelward exports Prometheus metrics; FastAPI's OpenTelemetry probe costs every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.draining = False
    app.state.manager = manager
    app.state.metrics = metrics
    app.state.logger = logger
    app.state.predictor = predictor
    app.state.on_shed = metrics.request_shed
    dependencies: dict[Policy, Any] = {
        policy: Depends(
            guard(
                policy,
                admin_token=_secret(settings.admin_token),
                predict_token=_secret(settings.predict_token),
            )
        )
        for policy in ("public", "predict", "admin")
    }
    install_problem_handlers(app)
    _add_ops_routes(app, manager, metrics, dependencies)
    add_docs_routes(app, dependencies)
    for add_prediction_routes in (add_rest_routes, add_v2_routes):
        add_prediction_routes(
            app,
            manager,
            predictor,
            max_rows=settings.max_rows,
            dependencies=dependencies,
            consent=consent,
            tracing=tracing,
        )
    # Feature routes: each module's add_routes(app, registry, metrics, dependencies) adds its own.
    # --- feature routes (one line each) ---
    from modelward.serving import alert_routes

    alert_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import feedback_routes

    feedback_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import abtest_routes

    abtest_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import deploy_routes

    deploy_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import drift_routes

    drift_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import card_routes

    card_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import erasure_routes

    erasure_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import governance_routes

    governance_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.serving import explain_routes

    explain_routes.add_routes(app, registry, metrics, dependencies, max_rows=settings.explain_max_rows)
    from modelward.serving import retrain_routes

    retrain_routes.add_routes(app, registry, metrics, dependencies)
    from modelward.ui import add_ui_routes

    app.state.ui_board = add_ui_routes(
        app,
        registry,
        admin_token=_secret(settings.admin_token),
        predict_token=_secret(settings.predict_token),
    )
    # --- end of feature routes ---
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    def on_response(state: dict[str, Any], status: int, seconds: float) -> None:
        endpoint = state.get("endpoint")
        if endpoint is not None:  # requests to a model's routes; health and docs are not counted
            metrics.observe_request(
                model=state.get("model") or "",
                version=state.get("version") or "",
                endpoint=endpoint,
                status=status,
                seconds=seconds,
                rows=state.get("rows"),
            )

    app.add_middleware(RequestContext, on_response=on_response)
    if settings.fast_path:
        lane = FastLane(
            manager=manager,
            predictor=predictor,
            max_rows=settings.max_rows,
            max_body_bytes=settings.max_body_bytes,
            predict_token=_secret(settings.predict_token),
            admin_token=_secret(settings.admin_token),
            metrics=metrics,
            on_shed=metrics.request_shed,
            consent=consent,
            tracing=tracing,
        )
        app.fast = FastPredict(lane)
    _typed_openapi(app)
    check_route_policies(app)
    return app


def _start_controller(
    settings: Settings, manager: ModelManager, metrics: ServingMetrics
) -> tuple[Controller, asyncio.Task[None]] | None:
    """The canary and monitoring controller of this process, under the store lease: with several
    workers or replicas, each runs one and only the lease holder acts. Its own registry, so its
    work never shares connections with the request path."""
    from modelward.control.controller import controller_from_settings
    from modelward.monitoring.controller_gauges import ControllerGauges
    from modelward.monitoring.drift_gauges import DriftGauges
    from modelward.monitoring.performance_gauges import PerformanceGauges

    try:
        registry = Registry.from_settings(settings).open()
        controller = controller_from_settings(
            registry,
            settings,
            interval=settings.controller_interval,
            lease_ttl=settings.resolved_controller_lease_ttl,
            models=manager.names,
            drift_gauges=DriftGauges(metrics.registry),
            performance_gauges=PerformanceGauges(metrics.registry),
            log_metrics=metrics,
            controller_gauges=ControllerGauges(metrics.registry),
        )
    except Exception as exc:  # a bad alerts file must not stop serving: say so and serve
        log.error("the controller is not running: %s", exc)
        return None
    return controller, asyncio.create_task(controller.run_forever_async())


async def _settle_then_freeze(manager: ModelManager, loading: asyncio.Task[None]) -> None:
    """Once every model answers (``loading``: from the compiled cache first where it can), load
    fully the versions that started from it (ModelManager.settle), then move the objects of start-up
    (MLflow, scikit-learn, the models: a million or more) out of the garbage collector's sight.
    Otherwise every full collection walks them all and stalls the event loop for a few hundred
    milliseconds under load. Workers that load before they listen wait for ``loading`` only."""
    with contextlib.suppress(Exception):  # a failed load is the manager's to report
        await loading
    await manager.settle()
    gc.collect()
    gc.freeze()


def create_app_from_env() -> FastAPI:
    """Factory for worker processes (``uvicorn --factory``): settings and models from the environment."""
    settings = Settings()
    return create_app(settings, settings.serve_models)


def _add_ops_routes(
    app: FastAPI, manager: ModelManager, metrics: ServingMetrics, deps: dict[Policy, Any]
) -> None:

    async def health() -> Response:
        return json_response({"status": "live"})

    async def ready(request: Request) -> Response:
        models = {
            name: {
                "ready": slot.current is not None,
                "version": slot.current.version if slot.current else None,
                # started from the compiled cache, its native model not loaded and checked yet
                "provisional": slot.routing is not None and slot.routing.provisional,
                **({"error": slot.error} if slot.error is not None and slot.current is None else {}),
            }
            for name, slot in manager.slots.items()
        }
        ok = manager.ready and not request.app.state.draining
        return json_response(
            {"ready": ok, "draining": request.app.state.draining, "models": models}, 200 if ok else 503
        )

    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def reload(request: Request, name: str) -> Response:
        if name not in manager.slots:
            raise ModelNotServed(name, manager.names)
        result = await manager.refresh(name, force=True)
        if result.error is not None:
            return problem_response(
                500,
                "reload failed",
                result.error,
                instance=request.url.path,
                extra={"serving_version": result.version},
            )
        return json_response({"model": name, "version": result.version, "changed": result.changed})

    routes: list[tuple[str, Any, str, Policy, str]] = [
        ("/health", health, "GET", "public", "Liveness"),
        ("/ready", ready, "GET", "public", "Readiness: every model loaded and warmed, not draining"),
        ("/metrics", prometheus, "GET", "public", "Prometheus metrics"),
        ("/admin/models/{name}/reload", reload, "POST", "admin", "Load the version the alias points at now"),
    ]
    for path, endpoint, method, policy, summary in routes:
        app.add_api_route(
            path,
            endpoint,
            methods=[method, "HEAD"] if method == "GET" else [method],
            summary=summary,
            dependencies=[deps[policy]],
            tags=["operations"],
            openapi_extra={AUTH_KEY: policy},
        )


def _typed_openapi(app: FastAPI) -> None:
    """Add each model's request schema to the OpenAPI components (requests are validated by hand)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in getattr(app.state, "openapi_models", []):
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict):
                    operation.pop("x-modelward-request-model", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _warm_dashboard(app: FastAPI, loading: asyncio.Task[Any]) -> None:
    """Once the models are loaded, read the dashboard's pages once in the background, so the first
    person to open one does not wait for MLflow's client, the reference profiles and every slot."""
    if not loading.cancelled():
        from modelward.ui.page import warm_in_background

        warm_in_background(app.state.ui_board)


def _drain_on_sigterm(app: FastAPI) -> Any:
    """Turn readiness false the moment SIGTERM arrives, then let the server's own handler run."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        app.state.draining = True
        log.info("SIGTERM: readiness is false; finishing in-flight requests")
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)

    return restore

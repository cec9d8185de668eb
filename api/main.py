"""The REST API: ``uvicorn api.main:app`` (the Procfile's ``api`` process).

Same core, same prediction log, same models as the dashboard. Docs at ``/docs``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api.deps import API_KEY_HEADER, AppState
from api.errors import install_error_handlers
from api.metrics import ApiMetrics
from api.middleware import ApiMiddleware, access_logger, close_logger
from api.routes import router
from api.settings import ApiSettings
from model.accounts.ratelimit import make_limiter
from model.logs import configure_logging
from model.serving.service import ModelStore, NoActiveModel
from model.store import registry
from model.store.db import get_engine, migrate, session_scope

API_VERSION = "1.0"
DESCRIPTION = f"""
Predicts a student's final maths grade (G3, 0-20) from the UCI Student Performance attributes, with
a prediction interval, the probability of passing (G3 >= 10), the paper's five-level band, a risk
level and the factors that move the prediction most.

Every `/v1` call needs an API key in the `{API_KEY_HEADER}` header (`predict` scope for predictions,
models and schema; `admin` scope also for `/metrics`). Errors are always JSON:
`{{"error", "message", "details": [{{"row", "field", "value", "allowed", "message"}}]}}`.

Unknown fields are ignored and listed in a note (`row` null) in the reply's `problems`, the same in
`/v1/predict` and `/v1/predict/batch`. A batch of N rows costs N against the key's row limit.
"""
log = logging.getLogger(__name__)


def _start(state: AppState) -> None:
    """Send the logs where the settings say, bring the schema up to date and load the active models
    before the first request."""
    assert state.settings.log_dir is not None
    state.settings.log_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(state.settings)
    migrate(state.engine)
    with session_scope(state.engine) as session:
        registry.resign_legacy_versions(session, settings=state.settings)
    try:
        for setup in ("early", "period1", "period2"):
            state.store.get(setup)
    except NoActiveModel as error:
        log.warning("%s; /healthz answers 503 until one is activated", error)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """A new API app on ``settings`` (default: read from the environment), passed to the core it calls."""
    settings = settings or ApiSettings()
    engine = get_engine(settings.database_url)
    store = ModelStore(engine, settings=settings)
    state = AppState(
        settings=settings,
        engine=engine,
        store=store,
        limiter=make_limiter(
            settings.api_rate_limit_storage, engine, settings.api_rate_limit, settings.api_rate_window_seconds
        ),
        row_limiter=make_limiter(
            settings.api_rate_limit_storage, engine, settings.api_row_limit, settings.api_rate_window_seconds
        ),
        metrics=ApiMetrics(store),
        access_log=access_logger(settings),
        verifier=settings.token_verifier(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_start, state)
        yield
        close_logger(state.access_log)

    app = FastAPI(title="mathsight API", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.mathsight = state
    install_error_handlers(app)
    app.add_middleware(ApiMiddleware, state=state)
    app.include_router(router)
    return app


app = create_app()

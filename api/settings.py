"""The API front's settings: the core settings plus the knobs only the API has.

Read like the core settings (keyword arguments, then ``MATHSIGHT_*`` environment variables, then
``.streamlit/secrets.toml``), e.g. ``MATHSIGHT_API_RATE_LIMIT=600``.
"""

from __future__ import annotations

from pydantic import Field

from model.accounts.ratelimit import Storage
from model.settings import Settings

MB = 1024 * 1024


class ApiSettings(Settings):
    """Everything configurable about the API."""

    api_rate_limit: int = Field(default=600, ge=1, description="requests per key per window")
    api_rate_window_seconds: int = Field(default=60, ge=1)
    api_row_limit: int = Field(
        default=200_000,
        ge=1,
        description="student rows per key per window, on top of the request count: a batch of N rows "
        "costs N (one student costs 1); the default lets two full batches of 100,000 rows through per window",
    )
    api_rate_limit_storage: Storage = Field(
        default="memory", description="memory: per worker; database: shared by every worker"
    )
    api_max_body_bytes: int = Field(default=10 * MB, ge=1024, description="larger bodies get 413")

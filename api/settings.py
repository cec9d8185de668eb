"""The API front's settings: the core settings plus the knobs only the API has.

Read like the core settings (keyword arguments, then ``MATHSIGHT_*`` environment variables, then
``.streamlit/secrets.toml``), e.g. ``MATHSIGHT_API_RATE_LIMIT=600``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from model.accounts.bearer import TokenVerifier
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
    # OAuth 2 bearer tokens (JWT) of the school's identity provider, beside API keys (model.accounts.bearer).
    api_oidc_issuer: str = Field(default="", description="the provider's issuer URL; empty: API keys only")
    api_oidc_audience: str = Field(default="", description="the audience tokens must name (the API's identifier)")
    api_oidc_scope_claim: str = Field(default="scope", description='the claim holding the scope ("roles" on Entra)')
    api_oidc_scope_prefix: str = Field(default="", description='what precedes predict/admin in it, e.g. "mathsight."')
    api_oidc_user: str = Field(default="", description="the mathsight user tokens act as (predictions are logged "
                               "under it); must be active")  # fmt: skip
    api_oidc_jwks_url: str = Field(default="", description="the provider's JWKS; empty: from its discovery document")

    @model_validator(mode="after")
    def _oidc_complete(self) -> ApiSettings:
        if self.api_oidc_issuer and not (self.api_oidc_audience and self.api_oidc_user):
            raise ValueError("MATHSIGHT_API_OIDC_ISSUER is set: MATHSIGHT_API_OIDC_AUDIENCE and "
                             "MATHSIGHT_API_OIDC_USER must be set too")  # fmt: skip
        return self

    def token_verifier(self) -> TokenVerifier | None:
        """The bearer-token check of the configured provider, or None when only API keys are accepted."""
        if not self.api_oidc_issuer:
            return None
        return TokenVerifier(self.api_oidc_issuer, self.api_oidc_audience, scope_claim=self.api_oidc_scope_claim,
                             scope_prefix=self.api_oidc_scope_prefix, jwks_url=self.api_oidc_jwks_url)  # fmt: skip

"""One settings object for the whole product, read once from the environment.

Values come, highest priority first, from: keyword arguments, environment variables, the
`[mathsight]` table of `.streamlit/secrets.toml` (so Streamlit secrets map onto it), then defaults.
No other module reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import secrets
import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from model.schema.thresholds import DEFAULT_THRESHOLDS as DEFAULTS
from model.schema.thresholds import Thresholds


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` as networks; raises ``ValueError`` naming an entry that is neither."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f'MATHSIGHT_TRUSTED_PROXIES: "{entry[:60]}" is not an IP address or CIDR (e.g. 10.0.0.1, 10.0.0.0/8)'
            ) from None
    return tuple(networks)


PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data" / "uci-student-performance"
INSECURE_VALUES = {"", "change-me", "changeme", "secret", "default", "mathsight"}


class SecretsTomlSource(PydanticBaseSettingsSource):
    """Reads the ``[mathsight]`` table of ``.streamlit/secrets.toml`` when the file exists."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.values: dict[str, Any] = {}
        if path.is_file():
            self.values = dict(tomllib.loads(path.read_text("utf-8")).get("mathsight", {}))

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Everything configurable about mathsight."""

    model_config = SettingsConfigDict(env_prefix="MATHSIGHT_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "MATHSIGHT_DATABASE_URL", "database_url"),
    )
    data: Path | None = Field(default=None, description="explicit path to student-mat.csv")
    home: Path = Field(default=PROJECT_ROOT / "data" / "local", description="local state directory")
    raw_dir: Path = PROJECT_ROOT / "data" / "raw"
    shared_data_dir: Path = SHARED_DATA_DIR
    secret_key: str = Field(default="", description="HMAC key for artifacts and student keys")
    cookie_key: str = Field(default="", description="signing key of the login cookie")
    cookie_name: str = "mathsight_auth"
    cookie_expiry_days: float = Field(default=1.0, gt=0, description="days a sign-in cookie stays valid")
    admin_password: str = ""
    log_dir: Path | None = None
    log_max_bytes: int = 10_000_000
    log_backups: int = 5
    model_seed: int = 42
    data_key: str = Field(default="", description="AES-256-GCM key for data at rest: base64 of 32 bytes")
    data_key_previous: str = Field(default="", description="the data key being rotated out (read-only)")
    retention_days: int | None = Field(default=None, ge=1, description="prediction log rows kept this many days")
    spool_dir: Path | None = Field(default=None, description="where log rows wait while the database is down")
    # The threshold table (model.schema.thresholds.Thresholds, whose defaults these are): risk and drift levels.
    risk_high_below: float = Field(default=DEFAULTS.risk_high_below, description="P(pass) below this: high risk")
    risk_medium_below: float = Field(default=DEFAULTS.risk_medium_below, description="P(pass) below this: medium risk")
    drift_watch_psi: float = Field(default=DEFAULTS.drift_watch_psi, description="PSI from this on: watch")
    drift_p_value: float = Field(default=DEFAULTS.drift_p_value, description="drift test p-value below this: drift")
    drift_large_rows: int = Field(
        default=DEFAULTS.drift_large_rows, ge=1, description="above this many recent rows PSI alone decides drift"
    )
    attention_risk_rise: float = Field(
        default=DEFAULTS.attention_risk_rise, description="a fall in P(pass) larger than this needs attention"
    )
    year_end: date | None = Field(default=None, description="the school year's end (YYYY-MM-DD): grades due after")
    # Alert rules (model.monitoring.alerts): thresholds, and the windows they judge, in days.
    alert_window_days: float = Field(default=1.0, gt=0, description="window of the error, latency, feedback rules")
    alert_min_rows: int = Field(
        default=DEFAULTS.alert_min_rows, ge=1, description="rows a window needs before those rules judge it"
    )
    alert_error_rate: float = Field(default=DEFAULTS.alert_error_rate, ge=0, le=1)
    alert_p95_latency_ms: float = Field(
        default=DEFAULTS.alert_p95_latency_ms, gt=0, description="p95 latency per logged row"
    )
    alert_feedback_rate: float = Field(
        default=DEFAULTS.alert_feedback_rate,
        ge=0,
        le=1,
        description='negative feedback ("not useful" or "wrongly flagged") per prediction',
    )
    alert_drift_days: float = Field(default=7.0, gt=0)
    alert_min_drift_rows: int = Field(default=DEFAULTS.alert_min_drift_rows, ge=1)
    alert_max_psi: float = Field(
        default=DEFAULTS.drift_act_psi, gt=0, description="PSI from this on: act (the drift alert)"
    )
    alert_realized_days: float = Field(default=90.0, gt=0)
    alert_min_outcomes: int = Field(default=DEFAULTS.alert_min_outcomes, ge=1)
    alert_accuracy_drop: float = Field(
        default=DEFAULTS.alert_accuracy_drop, ge=0, le=1, description="vs the version's protocol accuracy"
    )
    min_training_outcomes: int = Field(
        default=DEFAULTS.min_training_outcomes, ge=20, description="final grades needed to train or judge on them"
    )
    gate_accuracy_gap: float = Field(default=DEFAULTS.gate_accuracy_gap, gt=0, description="fairness gate (points)")
    gate_false_negative_gap: float = Field(default=DEFAULTS.gate_false_negative_gap, gt=0)
    gate_grade_bias_gap: float = Field(default=DEFAULTS.gate_grade_bias_gap, gt=0)
    alert_expected_days: float = Field(default=7.0, gt=0, description="window of the expected-accuracy rule")
    alert_expected_accuracy_drop: float = Field(
        default=DEFAULTS.alert_expected_accuracy_drop,
        ge=0,
        le=1,
        description="CBPE expected accuracy (no outcomes needed) vs the version's protocol accuracy",
    )
    alert_fairness_gap: float = Field(
        default=DEFAULTS.alert_fairness_gap,
        ge=0,
        le=1,
        description="false-negative/positive rate gap between subgroups (sex, school, address, age band)",
    )
    alert_webhook_url: str = Field(default="", description="where newly opened alerts are posted (JSON)")
    alert_webhook_timeout: float = Field(default=5.0, gt=0)
    dashboard_metrics_token: str = Field(
        default="", description="bearer token Prometheus sends for the dashboard's /_mathsight/metrics (a secret)"
    )
    alert_page_url: str = Field(
        default="http://localhost:8501/alerts", description="the Alerts page's address, linked from alert e-mails"
    )
    # The weekly digest's mail server (python -m model digest).
    oidc_trust_unsent_email_verified: bool = Field(
        default=False,
        description="accept provider sign-ins whose ID token has no email_verified claim (Microsoft Entra sends "
        "none): only where the provider's e-mail addresses are set by the school's administrators",
    )
    smtp_host: str = Field(default="", description="SMTP server of the weekly digest; empty: no digest is sent")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = Field(default="", description="SMTP login (empty: no login)")
    smtp_password: str = Field(default="", description="SMTP password (a secret: env or secrets.toml)")
    smtp_from: str = Field(default="", description="the digest's From address")
    smtp_starttls: bool = Field(default=True, description="upgrade the SMTP connection with STARTTLS")
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_ca_file: Path | None = Field(default=None, description="CA file trusted for STARTTLS (default: the system's)")
    trusted_proxies: str = Field(
        default="",
        description="comma-separated IPs or CIDRs of the reverse proxies whose X-Forwarded-For is believed "
        "(the sign-in back-off and the API's per-client limit); empty: X-Forwarded-For is never trusted",
    )

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` parsed (checked when the settings are made)."""
        return parse_networks(self.trusted_proxies)

    @model_validator(mode="after")
    def _fill_local_defaults(self) -> Settings:
        parse_networks(self.trusted_proxies)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'mathsight.db'}"
        if self.log_dir is None:
            self.log_dir = self.home / "logs"
        if self.spool_dir is None:
            self.spool_dir = self.home / "spool"
        if self.env == "production":
            for name in ("secret_key", "cookie_key"):
                if getattr(self, name).strip().lower() in INSECURE_VALUES or len(getattr(self, name)) < 16:
                    raise ValueError(
                        f"MATHSIGHT_{name.upper()} must be set to a random value of at least 16 "
                        "characters in production"
                    )
        Thresholds.from_settings(self)  # refuses levels that contradict each other, naming their settings
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets_toml = SecretsTomlSource(settings_cls, PROJECT_ROOT / ".streamlit" / "secrets.toml")
        return (init_settings, env_settings, secrets_toml)

    def local_secret(self, name: str) -> str:
        """The configured secret ``name``, or outside production a random one kept in ``home``."""
        value = getattr(self, name)
        if value:
            return value
        path = self.home / f".{name}"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32), "utf-8")
            path.chmod(0o600)
        return path.read_text("utf-8").strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()

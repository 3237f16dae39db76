"""The one settings object of the service, read only from the environment (pydantic-settings).

Development defaults exist for every secret so that ``python -m app`` works on a fresh machine,
but each one used is announced loudly, and none is accepted when ``APP_ENV=production``.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlencode

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

log = logging.getLogger("app.settings")

DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"
DEV_INTERNAL_API_KEY = "dev-internal-api-key-change-me"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/daygen.db"


class Settings(BaseSettings):
    """Every variable the service reads. Names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    app_env: Literal["development", "test", "production"] = "development"
    host: str | None = Field(
        None, description="Bind address; 127.0.0.1 by default, 0.0.0.0 in production."
    )
    port: int = Field(3000, ge=0, le=65535)
    api_base_url: str | None = Field(
        None,
        description="Public base URL of this service: task targets and result URLs are built "
        "from it. Default http://127.0.0.1:PORT.",
    )
    log_level: str = "INFO"

    # Queue backend (seed names + QUEUE_BACKEND).
    queue_backend: Literal["emulator", "cloud-tasks"] = "emulator"
    google_cloud_project: str = "local-project"
    google_cloud_location: str = "us-central1"
    queue_max_dispatches_per_second: float = Field(10.0, gt=0, le=500)
    queue_max_concurrent_dispatches: int = Field(100, ge=1, le=5000)
    retry_policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per job type, fields of its retry policy to change (JSON): max_attempts, "
        "min_backoff, max_backoff, max_doublings, max_retry_duration, retry_on.",
    )
    task_service_account_email: str | None = Field(
        None,
        description="When set, tasks ask Cloud Tasks for an OIDC token of this service account "
        "instead of carrying the internal key.",
    )

    # Database.
    database_url: str = DEFAULT_DATABASE_URL
    database_echo: bool = False

    # Auth of users.
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    starting_credits: int = Field(100, ge=0)

    # Auth of task deliveries.
    internal_api_key: SecretStr | None = None
    oidc_audience: str | None = Field(
        None, description="Audience expected in Cloud Tasks' OIDC tokens; OIDC is off if unset."
    )
    oidc_issuer: str = "https://accounts.google.com"
    oidc_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    oidc_service_account_email: str | None = Field(
        None, description="When set, the token's email claim must be this account."
    )

    # Providers: every name is served locally until the real adapters land (app.providers).
    bfl_api_key: SecretStr | None = None
    runway_api_key: SecretStr | None = Field(
        None, description="Former name of RUNWAYML_API_SECRET, still read."
    )
    replicate_api_token: SecretStr | None = None
    local_providers_only: bool = False
    # The real adapters (app.providers.bfl / runway / replicate). Base URLs are the vendors'
    # documented hosts; tests and `make run-fakes` point them at local fakes.
    bfl_api_url: str = Field(
        "https://api.bfl.ai",
        description="BFL API base (regional: https://api.eu.bfl.ai, https://api.us.bfl.ai). "
        "The key is sent only to this host and to *.bfl.ai.",
    )
    runwayml_api_secret: SecretStr | None = None
    runwayml_base_url: str = "https://api.dev.runwayml.com"
    replicate_base_url: str = "https://api.replicate.com"
    replicate_upscale_version: str = Field(
        "42fed1c4974146d4d2414e2be2c5277c7fcf05fcc3a73abf41610695738c1d7b",
        pattern=r"^[0-9a-f]{64}$",
        description="The nightmareai/real-esrgan version every upscale runs (pinned).",
    )
    # Active provider tasks allowed at once, per provider (the queue's concurrency per job
    # type will be shaped from these): BFL allows 24 active tasks; Runway's cap depends on the
    # organisation's tier (1-2 per model at tier 1); Replicate limits creations to 600/min.
    bfl_max_concurrency: int = Field(24, ge=1, le=1000)
    runwayml_max_concurrency: int = Field(2, ge=1, le=1000)
    replicate_max_concurrency: int = Field(10, ge=1, le=1000)
    provider_webhooks: bool = Field(
        False,
        description="Ask BFL and Replicate to call POST /internal/providers/{provider}/webhook "
        "when a task ends (API_BASE_URL must be reachable from them). Polling stays the source "
        "of truth; a webhook only makes the next poll happen now.",
    )
    provider_webhook_key: SecretStr | None = Field(
        None,
        description="Derives the per-job webhook_secret BFL gets with each task (default: "
        "INTERNAL_API_KEY); without either, BFL webhooks are not requested.",
    )
    replicate_webhook_secret: SecretStr | None = Field(
        None,
        description="The account's webhook signing secret (whsec_..., from GET "
        "/v1/webhooks/default/secret); Replicate webhooks are requested only when it is set.",
    )

    # Storage and source images.
    storage_url: str | None = Field(
        None,
        description="file://PATH (the local folder, default file://./var/media) or "
        "gs://BUCKET/PREFIX (Google Cloud Storage). Wins over STORAGE_DIR when both are set.",
    )
    storage_dir: Path = Field(
        Path("./var/media"), description="The local folder; the older spelling of file://PATH."
    )
    storage_emulator_host: str | None = Field(
        None,
        description="A Cloud Storage emulator (host:port or http://host:port), read as "
        "Google's clients read it: no credentials, no TLS.",
    )
    storage_signing_key_file: Path | None = Field(
        None,
        description="A service-account JSON key that signs Cloud Storage URLs. Unset: "
        "Application Default Credentials (a key file, or IAM signBlob on Cloud Run).",
    )
    storage_signing_service_account: str | None = Field(
        None,
        description="The account IAM signBlob signs as (default: the runtime's own; it needs "
        "roles/iam.serviceAccountTokenCreator on itself).",
    )
    media_url_ttl_seconds: int = Field(
        3600, ge=1, le=7 * 24 * 3600, description="Lifetime of signed result URLs (V4: <= 7 days)."
    )
    source_fetch_allow_private: bool = Field(
        False, description="Allow source image URLs on private/loopback addresses (dev only)."
    )
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        [],
        description="Hosts (host, or host:port) exempt from the private-address refusal of "
        "every outbound fetch (source images, webhooks, provider results): comma-separated.",
    )
    source_fetch_max_bytes: int = Field(20 * 1024 * 1024, ge=1)
    source_fetch_timeout_seconds: float = Field(15.0, gt=0)

    # Browsers and live updates (app.realtime reads the last four).
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        ["*"],
        description="Origins allowed to call the REST API from a browser: '*' or a comma-"
        "separated list. '*' is safe with bearer tokens (no ambient cookies).",
    )
    redis_url: str | None = Field(
        None,
        description="With it, live updates go through a Redis pub/sub channel, so every "
        "instance reaches its own Socket.IO and SSE clients.",
    )
    socketio_cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        ["*"], description="Origins allowed to open a Socket.IO connection ('*' or a list)."
    )
    socketio_redis_channel: str = Field(
        "daygen-socketio",
        min_length=1,
        description="Prefix of the Redis channel of live updates. Pub/sub ignores Redis "
        "database numbers, so deployments (and test runs) sharing a Redis need their own.",
    )
    sse_heartbeat_seconds: float = Field(
        15.0, gt=0, description="A comment line this often keeps proxies from closing SSE."
    )

    # Who may read /metrics (app.metrics): a bearer token, or peers in these networks. With
    # neither, /metrics is open outside production and closed in production.
    metrics_token: SecretStr | None = Field(
        None, description="A bearer token that may read /metrics (Prometheus' authorization)."
    )
    metrics_allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        [],
        description="Comma-separated networks (CIDR) whose peers may read /metrics without "
        "the token, e.g. 10.0.0.0/8,127.0.0.1/32. The TCP peer address is checked, never "
        "X-Forwarded-For.",
    )

    # Requests and background work.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    reconcile_interval_seconds: float = Field(
        30.0, ge=0, description="How often the reconciler looks for lost tasks; 0 disables it."
    )
    reconcile_after_seconds: float = Field(
        60.0, ge=0, description="A job PENDING for longer than this gets its task re-created."
    )
    stale_processing_seconds: float = Field(
        7200.0,
        gt=0,
        description="A job PROCESSING without any change for this long is failed (refunded): "
        "its deliveries died and the queue's retry window (1 h) is over.",
    )

    # Durability and shutdown (app.lifecycle, the reconciler, the in-process emulator).
    emulator_db: str | None = Field(
        None,
        description="The in-process emulator's queue journal (QUEUE_BACKEND=emulator): unset, "
        "beside a SQLite database file (var/daygen.db -> var/daygen-tasks.db; "
        "var/daygen-tasks.db with PostgreSQL); 'memory' keeps nothing; else a file path.",
    )
    shutdown_grace_seconds: float = Field(
        6.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long running deliveries may finish before they are handed "
        "back to the queue (Cloud Run kills the instance 10 s after SIGTERM; the rest of the "
        "stop, under load, took up to 2 s).",
    )
    shutdown_retry_after_seconds: int = Field(
        5, ge=0, description="Retry-After of the 503 a delivery gets while the app stops."
    )
    socketio_auth_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="An engine.io session that sends no Socket.IO CONNECT (with its token) "
        "within this long is closed.",
    )
    socketio_max_connections: int = Field(
        10_000, ge=1, description="Socket.IO connections per instance, all users together."
    )
    socketio_max_connections_per_user: int = Field(
        20, ge=1, description="Socket.IO connections of one user on one instance."
    )

    @field_validator("cors_allowed_origins", "socketio_cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """``*``, or a comma-separated list of origins; nothing at all means ``*``."""
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",")]
        if isinstance(value, list):
            return [origin for origin in value if origin] or ["*"]
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _no_empty_token(cls, value: object) -> object:
        """An empty ``METRICS_TOKEN`` is no token (it would match an empty bearer)."""
        return None if value == "" else value

    @field_validator("metrics_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        """A comma-separated list of networks (``10.0.0.0/8``, ``::1/128``, a bare address)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_allow_hosts(cls, value: object) -> object:
        """A comma-separated list; each entry must be ``host`` or ``host:port``."""
        from app.providers.guard import parse_allow_host

        if isinstance(value, str):
            value = [entry.strip() for entry in value.split(",")]
        if isinstance(value, list):
            entries = [entry for entry in value if isinstance(entry, str) and entry.strip()]
            for entry in entries:
                parse_allow_host(entry)  # a ValueError names the bad entry
            return entries
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "gs://")):
            raise ValueError("STORAGE_URL must be file://PATH or gs://BUCKET/PREFIX")
        return value

    @property
    def storage_location(self) -> str:
        """Where results go, as a URL: ``STORAGE_URL``, else ``STORAGE_DIR`` as ``file://``."""
        if self.storage_url is not None:
            return self.storage_url
        folder = self.storage_dir
        return f"file://{folder}" if folder.is_absolute() else f"file://./{folder}"

    @property
    def runway_secret(self) -> SecretStr | None:
        """``RUNWAYML_API_SECRET`` (the SDK's name), else the older ``RUNWAY_API_KEY``."""
        return self.runwayml_api_secret or self.runway_api_key

    @model_validator(mode="after")
    def _one_storage(self) -> Self:
        if self.storage_url is not None and "storage_dir" in self.model_fields_set:
            log.warning("STORAGE_URL and STORAGE_DIR are both set; STORAGE_URL wins")
        return self

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        """Refuse development secrets in production; warn loudly about them elsewhere."""
        missing: list[str] = []
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            missing.append("JWT_SECRET (or JWT_JWKS_URL)")
        if self.internal_api_key is None and self.oidc_audience is None:
            missing.append("INTERNAL_API_KEY (or OIDC_AUDIENCE)")
        if self.app_env == "production":
            if missing:
                raise ValueError(
                    "APP_ENV=production refuses development secrets; set " + ", ".join(missing)
                )
            return self
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            self.jwt_secret = SecretStr(DEV_JWT_SECRET)
        if self.internal_api_key is None:
            self.internal_api_key = SecretStr(DEV_INTERNAL_API_KEY)
        if missing:
            message = (
                "INSECURE DEVELOPMENT DEFAULTS in use for "
                + ", ".join(missing)
                + ": anyone who reads the source can sign tokens. Never deploy like this."
            )
            log.warning(message)
        return self

    @model_validator(mode="after")
    def _valid_retry_policies(self) -> Self:
        from app.jobs.retry_policy import resolve_policies

        resolve_policies(self.retry_policies)
        return self

    @property
    def bind_host(self) -> str:
        if self.host:
            return self.host
        return "0.0.0.0" if self.app_env == "production" else "127.0.0.1"

    @property
    def base_url(self) -> str:
        """``API_BASE_URL`` without a trailing slash."""
        return (self.api_base_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def task_queue_url(self) -> str:
        """The URL ``daygen_queue.open_task_queue`` understands: with the in-process
        emulator, ``emulator:?db=PATH`` when its journal is kept (``emulator_journal``)."""
        if self.queue_backend == "emulator":
            journal = self.emulator_journal
            if journal is None:
                return "emulator:"
            return "emulator:?" + urlencode({"db": journal}, safe="/")
        return f"cloudtasks://{self.google_cloud_project}/{self.google_cloud_location}"

    @property
    def emulator_journal(self) -> str | None:
        """Where the in-process emulator keeps its queues and tasks (None: in memory only).
        By default beside the app's database, so a restart redelivers every task."""
        if self.emulator_db is not None:
            choice = self.emulator_db.strip()
            return None if choice.lower() == "memory" else choice
        return default_emulator_journal(self.database_url)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"


def default_emulator_journal(database_url: str) -> str | None:
    """The journal beside a SQLite database file (``daygen.db`` -> ``daygen-tasks.db``);
    ``./var/daygen-tasks.db`` for a server database; None for an in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return "./var/daygen-tasks.db"
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    path = Path(database)
    return str(path.with_name(f"{path.stem}-tasks{path.suffix or '.db'}"))

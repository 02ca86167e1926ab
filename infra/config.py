"""Configuration from the environment, with embedded defaults that need nothing installed."""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _default_instance_dir() -> Path:
    return Path(os.environ.get("JIEYOU_INSTANCE_DIR", Path.cwd() / "instance"))


class ConfigurationError(RuntimeError):
    """The environment names a set-up the service must not run with; the message says what to set."""


def _flag(raw: str | None) -> bool:
    """A yes said on purpose: 1, true, yes or on; anything else (0, false, empty) is no."""
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


def jobs_refusal(environ: Mapping[str, str]) -> str | None:
    """Why a production web server (gunicorn) must not start with these jobs settings, or None.
    Without CELERY_BROKER_URL every job runs inside the request that queues it and the nightly
    schedule (awards after the public notice, hold expiry, the ledger checks and digest) runs in
    no process at all: only `jieyou run`, the embedded default's single process, runs it itself.
    Accepted only when JOBS_IN_PROCESS says so (benchmarks, a trial on one machine)."""
    if environ.get("CELERY_BROKER_URL") or _flag(environ.get("JOBS_IN_PROCESS")):
        return None
    return ("CELERY_BROKER_URL is not set: jobs would run inside requests and the nightly schedule (awards after "
            "the public notice, hold expiry, the ledger digest) would run nowhere. Set CELERY_BROKER_URL and run "
            "celery worker and beat, or set JOBS_IN_PROCESS=1 if jobs in-process without the schedule are intended.")


def _instance_secret_key(instance: Path) -> str:
    """A stable random key for the embedded default, kept in the instance folder. Written whole
    under a name of its own, then linked into place (which fails if a key is there already): a
    process starting at the same moment finds either no key or the whole of the first one, never
    a half-written (empty) file, and never keeps a key of its own that the others do not share."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        draft = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first: its key is the one
        finally:
            draft.unlink()
    return path.read_text().strip()


@dataclass
class Settings:
    """Everything the service reads from its environment, in one typed place."""

    instance_dir: Path = field(default_factory=_default_instance_dir)
    database_url: str = ""
    broker_url: str = ""
    result_backend: str = ""
    ratelimit_storage_uri: str = "memory://"
    secret_key: str = ""
    token_ttl_hours: int = 12
    # Manual adjustments larger than this (absolute points) need an approver's second pair of eyes.
    adjustment_approval_threshold: int = 20
    # Shards for system accounts (issuance, partner, adjustment), so awards don't queue on one row.
    system_account_shards: int = 16
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    login_rate_limit: str = "10 per minute"
    default_locale: str = "zh"
    sql_echo: bool = False
    # Redemption: one-time code lifetime, hold lifetime, refund window, counter rate limits.
    code_ttl_seconds: int = 300
    hold_ttl_minutes: int = 30
    refund_window_days: int = 7
    lookup_rate_limit: str = "60 per minute"
    code_rate_limit: str = "5 per minute"
    code_failure_limit: str = "10 per 10 minutes"
    # A day's unknown codes per outlet: with 1,000 codes live, 50 guesses hit one with a chance of
    # 0.05 % (the 10-minute budget alone allows 1,440 a day: 1.4 %).
    code_failure_daily_limit: str = "50 per day"
    code_issue_limit: str = "10 per 10 minutes"  # per participant: codes are rows, and hold digits
    # Runs an import may start without finishing (its worker killed, say by a file that exhausts its
    # memory) before it is marked failed instead of being run again.
    import_max_attempts: int = 3
    # Work dated more than this many days before the day it is submitted (by a participant, staff
    # or an import) is refused: it would reach into months whose caps were settled long ago.
    contribution_max_age_days: int = 90
    # How far after today a rule set may be dated to take effect: a far date published once
    # would leave no later date for any version after it.
    rules_max_lead_days: int = 365
    local_timezone: str = "Asia/Shanghai"
    # Number of trusted reverse proxies in front of the app (0: none; addresses are taken as seen).
    proxy_hops: int = 0

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        instance = Path(str(overrides.pop("instance_dir", _default_instance_dir())))
        env = os.environ
        settings = cls(
            instance_dir=instance,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{instance / 'jieyou.db'}",
            broker_url=env.get("CELERY_BROKER_URL", ""),
            result_backend=env.get("CELERY_RESULT_BACKEND", ""),
            ratelimit_storage_uri=env.get("RATELIMIT_STORAGE_URI", "memory://"),
            secret_key="",
            token_ttl_hours=_int("TOKEN_TTL_HOURS", 12),
            adjustment_approval_threshold=_int("ADJUSTMENT_APPROVAL_THRESHOLD", 20),
            system_account_shards=_int("SYSTEM_ACCOUNT_SHARDS", 16),
            argon2_time_cost=_int("ARGON2_TIME_COST", 3),
            argon2_memory_kib=_int("ARGON2_MEMORY_KIB", 65536),
            login_rate_limit=env.get("LOGIN_RATE_LIMIT", "10 per minute"),
            default_locale=env.get("DEFAULT_LOCALE", "zh"),
            sql_echo=env.get("SQL_ECHO", "") == "1",
            proxy_hops=_int("PROXY_HOPS", 0),
            code_ttl_seconds=_int("CODE_TTL_SECONDS", 300),
            hold_ttl_minutes=_int("HOLD_TTL_MINUTES", 30),
            refund_window_days=_int("REFUND_WINDOW_DAYS", 7),
            lookup_rate_limit=env.get("LOOKUP_RATE_LIMIT", "60 per minute"),
            code_rate_limit=env.get("CODE_RATE_LIMIT", "5 per minute"),
            code_failure_limit=env.get("CODE_FAILURE_LIMIT", "10 per 10 minutes"),
            code_failure_daily_limit=env.get("CODE_FAILURE_DAILY_LIMIT", "50 per day"),
            code_issue_limit=env.get("CODE_ISSUE_LIMIT", "10 per 10 minutes"),
            import_max_attempts=_int("IMPORT_MAX_ATTEMPTS", 3),
            contribution_max_age_days=_int("CONTRIBUTION_MAX_AGE_DAYS", 90),
            rules_max_lead_days=_int("RULES_MAX_LEAD_DAYS", 365),
            local_timezone=env.get("LOCAL_TIMEZONE", "Asia/Shanghai"),
        )
        for key, value in overrides.items():
            if not hasattr(settings, key):
                raise TypeError(f"unknown setting {key}")
            setattr(settings, key, value)
        if settings.database_url.startswith("postgresql://"):
            settings.database_url = "postgresql+psycopg://" + settings.database_url[len("postgresql://"):]
        if settings.database_url.startswith("sqlite"):
            instance.mkdir(parents=True, exist_ok=True)
        if not settings.secret_key:
            settings.secret_key = env.get("SECRET_KEY", "")
        if not settings.secret_key:
            if not settings.is_sqlite:
                # Every web and worker process, on every machine, must share it (one-time codes are
                # keyed with it): one made up per machine would make a code issued on one web
                # server unknown on the next.
                raise ConfigurationError("SECRET_KEY is not set: with a server database (DATABASE_URL) every web "
                                         "and worker process must share one; set it to a long random string.")
            settings.secret_key = _instance_secret_key(instance)
        return settings

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: Celery tasks run in-process."""
        return not self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

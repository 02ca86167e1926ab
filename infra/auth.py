"""Who is calling: the Principal every service receives, and the view decorators that demand one.

How a bearer token or API key becomes a Principal is a domain matter (`identity`), plugged in
with `set_principal_loader`, so this package stays free of domain imports.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request

from infra.errors import Forbidden, Unauthorized

STAFF_ROLES = ("clerk", "verifier", "approver", "auditor", "admin")


@dataclass(frozen=True)
class Principal:
    """The acting user, passed explicitly to every service. `ip` and `user_agent` say from where."""

    kind: str  # staff | participant | outlet | system
    id: int
    label: str
    role: str | None = None
    scope_region_id: int | None = None
    scope_path: str | None = None
    partner_id: int | None = None
    participant_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def has_role(self, *roles: str) -> bool:
        return self.is_staff and (self.role in roles or self.role == "admin")

    def in_scope(self, region_path: str | None) -> bool:
        """Staff see a region when their scope path is a prefix of it (county sees all)."""
        if not self.is_staff or region_path is None or self.scope_path is None:
            return False
        return region_path.startswith(self.scope_path)


SYSTEM = Principal(kind="system", id=0, label="system")

PrincipalLoader = Callable[[str, str], Principal | None]
_loader: PrincipalLoader | None = None


def set_principal_loader(loader: PrincipalLoader) -> None:
    """`loader(scheme, credential)` returns the Principal or None; scheme is 'bearer' or 'apikey'."""
    global _loader
    _loader = loader


def _credential() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return "bearer", header[7:].strip()
    if header[:7].lower() == "apikey " and header[7:].strip():
        return "apikey", header[7:].strip()
    if key := request.headers.get("X-Api-Key"):
        return "apikey", key.strip()
    return None


def current_principal() -> Principal | None:
    """Resolve once per request (cached on the request, not the app context); views pass the
    result to services."""
    cache_key = "jieyou.principal"
    if cache_key not in request.environ:
        cred = _credential()
        principal = _loader(*cred) if (cred and _loader) else None
        if principal is not None:
            principal = Principal(**{**principal.__dict__, "ip": request.remote_addr,
                                     "user_agent": request.headers.get("User-Agent", "")[:300]})
        request.environ[cache_key] = principal
    return request.environ[cache_key]


F = TypeVar("F", bound=Callable[..., Any])


def require(kind: str, *roles: str) -> Callable[[F], F]:
    """View decorator: the caller must be of `kind` (and, for staff, hold one of `roles`).

    The principal is passed to the view as the keyword argument `actor`.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                raise Unauthorized("Sign in first.", code="unauthorized")
            if principal.kind != kind:
                raise Forbidden("This action is not available to your account type.")
            if roles and not principal.has_role(*roles):
                raise Forbidden("Your role does not allow this action.", code="role_required",
                                details={"roles": list(roles)})
            return view(*args, actor=principal, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator

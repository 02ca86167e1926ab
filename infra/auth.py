"""Who is calling: the Principal every service receives, and the view decorators that demand one.

How a bearer token or API key becomes a Principal is a domain matter (`identity`), plugged in
with `set_principal_loader`, so this package stays free of domain imports.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Response, after_this_request, request
from sqlalchemy import ColumnElement, false
from sqlalchemy.orm import QueryableAttribute

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

    def scope_filter(self, path_column: QueryableAttribute[str | None]) -> ColumnElement[bool]:
        """`in_scope` as a SQL condition on a region-path column, so lists show what a detail
        view would. A caller without a scope path matches no row (never "every row"), and the
        path is matched literally (`autoescape`), as `str.startswith` matches it in `in_scope`."""
        if not self.is_staff or self.scope_path is None:
            return false()
        return path_column.startswith(self.scope_path, autoescape=True)


SYSTEM = Principal(kind="system", id=0, label="system")

PrincipalLoader = Callable[[str, str], Principal | None]
_loader: PrincipalLoader | None = None
_unchecked_loader: PrincipalLoader | None = None
_distrust: Callable[[Principal], None] | None = None


def set_principal_loader(loader: PrincipalLoader, *, unchecked: PrincipalLoader | None = None,
                         distrust: Callable[[Principal], None] | None = None) -> None:
    """`loader(scheme, credential)` returns the Principal or None; scheme is 'bearer' or 'apikey'.

    `unchecked(scheme, credential)`, optional, answers from memory without checking that the
    credential is still valid (None when it cannot tell); its Principal carries
    `extra["check_key"]`, the credential's id, for the service to check in its own statement.
    `distrust(principal)` makes it forget one: called when a request that used it did not succeed
    (it may have failed before any check: a bad body, a rate limit), so that the next request with
    that credential is checked in full and, if it is no longer valid, counted and refused as such."""
    global _loader, _unchecked_loader, _distrust
    _loader, _unchecked_loader, _distrust = loader, unchecked, distrust


def _credential() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return "bearer", header[7:].strip()
    if header[:7].lower() == "apikey " and header[7:].strip():
        return "apikey", header[7:].strip()
    if key := request.headers.get("X-Api-Key"):
        return "apikey", key.strip()
    return None


def current_principal(*, unchecked: bool = False) -> Principal | None:
    """Resolve once per request (cached on the request, not the app context); views pass the
    result to services. `unchecked=True` accepts a Principal the unchecked loader knows from
    memory (see `require(..., checked_by_service=True)`); without one it resolves as usual."""
    cache_key = "jieyou.principal"
    environ = request.environ
    if cache_key not in environ:
        if unchecked and _unchecked_loader is not None:
            if "jieyou.principal.unchecked" not in environ:
                cred = _credential()
                found = environ["jieyou.principal.unchecked"] = _with_origin(_unchecked_loader(*cred) if cred else None)
                if found is not None and _distrust is not None:
                    after_this_request(functools.partial(_distrust_unless_ok, found))
            if environ["jieyou.principal.unchecked"] is not None:
                return environ["jieyou.principal.unchecked"]
        cred = _credential()
        environ[cache_key] = _with_origin(_loader(*cred) if (cred and _loader) else None)
    return environ[cache_key]


def _distrust_unless_ok(principal: Principal, response: Response) -> Response:
    if response.status_code >= 400 and _distrust is not None:
        _distrust(principal)
    return response


def _with_origin(principal: Principal | None) -> Principal | None:
    if principal is None:
        return None
    return dataclasses.replace(principal, ip=request.remote_addr,
                               user_agent=request.headers.get("User-Agent", "")[:300])


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Access:
    """What `require` demands, kept on the view for the OpenAPI spec (`infra.openapi`), so that
    the documented security and errors are those enforced. `roles` constrain staff only; empty,
    any staff role will do (admin always does)."""

    kinds: tuple[str, ...]
    roles: tuple[str, ...] = ()

    def staff_roles(self) -> tuple[str, ...]:
        """The staff roles let in, admin included; empty when staff are not."""
        if "staff" not in self.kinds:
            return ()
        return tuple(r for r in STAFF_ROLES if not self.roles or r in self.roles or r == "admin")


def require(kind: str | tuple[str, ...], *roles: str, checked_by_service: bool = False) -> Callable[[F], F]:
    """View decorator: the caller must be of `kind` (or of one of the kinds given as a tuple) and,
    for staff, hold one of `roles`.

    The principal is passed to the view as the keyword argument `actor`. With
    `checked_by_service=True` it may be an unchecked one (`extra["check_key"]`): only for a view
    whose service checks that key inside the very statement that acts (the counter's redeem),
    which saves the hot path a round trip to the database.

    The view carries `access` (an `Access`), read once when the spec is built: the spec documents
    its credentials, 401 and 403 from it.
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    unknown = set(kinds) - {"staff", "participant", "outlet"}
    if unknown or not kinds:
        raise ValueError(f"require: unknown kind(s) {sorted(unknown)}")
    if roles and "staff" not in kinds:
        raise ValueError("require: roles constrain staff only")
    if set(roles) - set(STAFF_ROLES):
        raise ValueError(f"require: unknown role(s) {sorted(set(roles) - set(STAFF_ROLES))}")
    access = Access(kinds, tuple(roles))

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal(unchecked=checked_by_service)
            if principal is None:
                raise Unauthorized("Sign in first.", code="unauthorized")
            if principal.kind not in kinds:
                raise Forbidden("This action is not available to your account type.")
            if roles and principal.kind == "staff" and not principal.has_role(*roles):
                raise Forbidden("Your role does not allow this action.", code="role_required",
                                details={"roles": list(roles)})
            return view(*args, actor=principal, **kwargs)

        wrapper.access = access  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator

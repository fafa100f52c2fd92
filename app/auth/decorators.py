"""Role checks for back-office routes."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, request
from flask_login import current_user

from app.audit import record_audit
from app.auth.models import Role
from app.database import unit_of_work
from app.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


def _audit_refusal(wanted: tuple[Role, ...]) -> None:
    """Record that the logged-in user was refused a page their roles do not open."""
    with unit_of_work():
        record_audit("auth.forbidden", object_type="route",
                     object_id=(request.endpoint or "")[:64],
                     details={"path": request.path[:300], "method": request.method,
                              "needed": [r.value for r in wanted],
                              "held": sorted(r.value for r in current_user.roles)})


def role_required(*roles: Role | str) -> Callable[[F], F]:
    """Allow the route only to a logged-in user holding one of `roles`.

    An anonymous visitor is sent to login; a logged-in user without the role gets a 403
    page that names the roles needed (kept in `g.required_roles`), and the refusal is
    audited ("auth.forbidden": who, which page, from where), in its own unit of work.
    """
    wanted = tuple(Role(r) for r in roles)

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*wanted):
                g.required_roles = wanted
                _audit_refusal(wanted)
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_roles = wanted  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate

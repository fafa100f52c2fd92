"""Role checks for back-office routes."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g
from flask_login import current_user

from app.auth.models import Role
from app.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


def role_required(*roles: Role | str) -> Callable[[F], F]:
    """Allow the route only to a logged-in user holding one of `roles`.

    An anonymous visitor is sent to login; a logged-in user without the role gets a 403
    page that names the roles needed (kept in `g.required_roles`).
    """
    wanted = tuple(Role(r) for r in roles)

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*wanted):
                g.required_roles = wanted
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_roles = wanted  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate

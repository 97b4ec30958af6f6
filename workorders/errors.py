"""Work-order errors with stable codes and HTTP statuses (applied by :mod:`web.errors`,
the one place errors become responses)."""

from __future__ import annotations

from domain.errors import DomainError


class WorkOrderError(DomainError):
    """Base of every work-order error."""

    code = "work_order_error"


class NotFound(WorkOrderError):
    code = "not_found"
    status = 404


class InvalidInput(WorkOrderError):
    code = "invalid_input"


class IllegalTransition(WorkOrderError):
    """An action the work order's current state does not allow; the message names the state."""

    code = "illegal_transition"
    status = 409

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a work order that is {state}")
        self.action = action
        self.state = state


class Unauthenticated(WorkOrderError):
    code = "unauthenticated"
    status = 401


class Forbidden(WorkOrderError):
    code = "forbidden"
    status = 403


class ExtensionLimit(WorkOrderError):
    code = "extension_limit"
    status = 409


class UnknownService(WorkOrderError):
    code = "unknown_service"

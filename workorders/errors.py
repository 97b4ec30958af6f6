"""Domain errors with stable codes, and their HTTP statuses (applied by :mod:`web.errors`,
the one place errors become responses)."""

from __future__ import annotations


class WorkOrderError(Exception):
    """Base of every work-order error; ``code`` is stable and safe to show to clients."""

    code = "work_order_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(WorkOrderError):
    code = "not_found"


class InvalidInput(WorkOrderError):
    code = "invalid_input"


class IllegalTransition(WorkOrderError):
    """An action the work order's current state does not allow; the message names the state."""

    code = "illegal_transition"

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a work order that is {state}")
        self.action = action
        self.state = state


class Unauthenticated(WorkOrderError):
    code = "unauthenticated"


class Forbidden(WorkOrderError):
    code = "forbidden"


class ExtensionLimit(WorkOrderError):
    code = "extension_limit"


class UnknownService(WorkOrderError):
    code = "unknown_service"


_HTTP_STATUS: dict[type[WorkOrderError], int] = {
    NotFound: 404,
    UnknownService: 400,
    InvalidInput: 400,
    IllegalTransition: 409,
    ExtensionLimit: 409,
    Unauthenticated: 401,
    Forbidden: 403,
}


def http_status(error: WorkOrderError) -> int:
    """HTTP status for a domain error: the most specific mapping along its class hierarchy."""
    for cls in type(error).__mro__:
        if cls in _HTTP_STATUS:
            return _HTTP_STATUS[cls]
    return 400

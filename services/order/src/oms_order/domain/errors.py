"""What the order refuses, each with a stable `code` (the API answers by it: see
`api/problems.py`)."""


class OrderError(Exception):
    """A business rule refused the request; `code` is stable for clients."""

    code = "order_error"


class OrderNotCancellable(OrderError):
    code = "order_not_cancellable"


class InvalidOrder(OrderError):
    code = "invalid_order"


class OrderNotInAttention(OrderError):
    code = "order_not_in_attention"


class OrderNotModifiable(OrderError):
    code = "order_not_modifiable"


class OrderNotDeletable(OrderError):
    code = "order_not_deletable"

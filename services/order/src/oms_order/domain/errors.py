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

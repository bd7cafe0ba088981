"""One interceptor that maps the node's domain errors to gRPC status codes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from node import metrics
from node.errors import DeadlineExceeded, InvalidArgument, NotReady

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/edgerank."
_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotReady, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
)


def status_for(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client sees for ``error``."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code, str(error)
    return grpc.StatusCode.INTERNAL, "internal error"


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the unary handlers of edgerank services (coroutines); other services pass through.

    gRPC asks the interceptor on every call; the wrapped handler of a method is built once and kept
    (the services' handlers do not change while the server runs).
    """

    def __init__(self) -> None:
        self._guarded: dict[str, Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or not method.startswith(SERVICE_PREFIX):
            return handler
        guarded = self._guarded[method] = _guard(method, handler)
        return guarded


def _guard(method: str, handler: Any) -> Any:
    behavior = handler.unary_unary
    ok = metrics.RPC_STATUS.labels(method, grpc.StatusCode.OK.name)

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            response = await behavior(request, context)
        except Exception as error:
            code, message = status_for(error)
            if code == grpc.StatusCode.INTERNAL:
                log.error("%s failed", method, exc_info=error)
            metrics.RPC_STATUS.labels(method, code.name).inc()
            await context.abort(code, message)
        ok.inc()
        return response

    return grpc.unary_unary_rpc_method_handler(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )

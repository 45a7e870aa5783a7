"""The API's one error type and its JSON envelope: ``{"error": "...", "details": [...]}``."""


class ApiError(Exception):
    """An answer other than success; ``reason`` labels the ingest error metric."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list | None = None,
        headers: dict | None = None,
        reason: str = "",
    ):
        super().__init__(message)
        self.status, self.message = status, message
        self.details = details or []
        self.headers = headers or {}
        self.reason = reason or {
            400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
            413: "too_large", 415: "unsupported_media_type", 429: "rate_limited",
            503: "unavailable",
        }.get(status, str(status))  # fmt: skip

    def body(self) -> dict:
        return {"error": self.message, "details": self.details}


class BatchInvalid(ApiError):
    """One or more items of a batch are bad; nothing of the batch is stored. ``details`` may
    list only the first of ``count`` bad items."""

    def __init__(self, details: list[dict], count: int | None = None):
        count = len(details) if count is None else count
        listed = "" if count == len(details) else f" (the first {len(details)} listed)"
        super().__init__(400, f"{count} invalid item(s){listed}; nothing was stored", details)

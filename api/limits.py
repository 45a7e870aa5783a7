from django.conf import settings
from django.http import JsonResponse

from api.metrics import count_refusal

API_PREFIX = "/api/v1/"
WRITE_METHODS = {"POST", "PUT", "PATCH"}
# Content types each write endpoint accepts; everything else under the API takes JSON.
CONTENT_TYPES = {"/api/v1/write": "application/x-protobuf"}


class ApiRequestGuard:
    """Refuse oversized bodies (413) and wrong content types (415) before any work is done."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX) and request.method in WRITE_METHODS:
            refusal = self.refusal(request)
            if refusal is not None:
                status, reason, message = refusal
                count_refusal(request, reason)
                return JsonResponse({"error": message, "details": []}, status=status)
        return self.get_response(request)

    def refusal(self, request) -> tuple[int, str, str] | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, "invalid", "Content-Length is not a number"
        if length > settings.INGEST_MAX_BODY_BYTES:
            return (
                413,
                "too_large",
                f"body of {length} bytes; at most {settings.INGEST_MAX_BODY_BYTES} accepted",
            )
        expected = CONTENT_TYPES.get(request.path_info.rstrip("/"), "application/json")
        if request.content_type != expected:
            return 415, "unsupported_media_type", f"Content-Type must be {expected}"
        return None

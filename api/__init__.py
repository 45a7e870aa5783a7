"""The HTTP API's home (PRODUCT.md section 2): the one NinjaAPI object and its error envelope
(``api.api``), token authentication with scopes and rate limits (``api.auth``), and the limits
that hold before any work is done (``api.limits``).

``api.api`` mounts the routers of ingestion, alerts and dashboard; those routers import only the
leaf modules ``api.auth`` and ``api.limits``, which depend on ingestion's token model alone.
"""

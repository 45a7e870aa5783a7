"""The HTTP API's home (PRODUCT.md section 2): the one NinjaAPI object and its error envelope
(``api.api``), token authentication with scopes and rate limits (``api.auth``), the limits
that hold before any work is done (``api.limits``), the types and list shape of its values
(``api.formats``), and what it refuses, counted (``api.metrics``).

``api.api`` mounts the routers of ingestion, alerts, dashboard and checks; those routers use
only the leaf modules ``api.auth`` and ``api.formats``, which depend on ingestion's token model
and on instances alone.
"""

"""A real OpenID Connect provider on 127.0.0.1 for tests, built with pyop.

It serves discovery, authorize, token, userinfo and JWKS over HTTPS (a certificate made for
127.0.0.1; ``ca_file`` is what clients must trust) from a thread. Its users are
a dict of standard claims; the authorize endpoint logs in ``provider.signed_in_user`` (the
person at the provider's login screen) and redirects back with a code, as a real provider does
after its own login page.
"""

import datetime
import json
import ssl
import tempfile
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from Cryptodome.PublicKey import RSA
from jwkest.jwk import RSAKey
from pyop.authz_state import AuthorizationState
from pyop.exceptions import InvalidAuthenticationRequest, OAuthError
from pyop.provider import Provider
from pyop.subject_identifier import HashBasedSubjectIdentifierFactory
from pyop.userinfo import Userinfo

from tests.certificates import self_signed_certificate


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class ThreadedServer(WSGIServer):
    daemon_threads = True


class OidcProvider:
    def __init__(self, client_id: str, client_secret: str, redirect_uris: list[str], users: dict):
        self.server = make_server(
            "127.0.0.1", 0, self.app, server_class=ThreadedServer, handler_class=QuietHandler
        )
        self.ca_file = self._serve_over_tls()
        self.issuer = f"https://127.0.0.1:{self.server.server_port}"
        self.signed_in_user = next(iter(users))
        configuration = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["authorization_code"],
            "claims_parameter_supported": True,
        }
        clients = {
            client_id: {
                "client_secret": client_secret,
                "redirect_uris": redirect_uris,
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_post",
            }
        }
        signing_key = RSAKey(key=RSA.generate(2048), alg="RS256", kid="vigil-test")
        self.provider = Provider(
            signing_key,
            configuration,
            AuthorizationState(HashBasedSubjectIdentifierFactory("vigil-test-salt")),
            clients,
            Userinfo(users),
        )
        self.requests: list[str] = []

    def _serve_over_tls(self) -> str:
        """A self-signed certificate for 127.0.0.1; returns the path of its PEM file."""
        self.tls_dir = tempfile.TemporaryDirectory()
        cert_file, key_file = self_signed_certificate(
            Path(self.tls_dir.name), datetime.timedelta(hours=1)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        return str(cert_file)

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.tls_dir.cleanup()

    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        self.requests.append(path)
        query = environ.get("QUERY_STRING", "")
        body = ""
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length).decode()
        headers = {"Authorization": environ.get("HTTP_AUTHORIZATION")}
        try:
            if path == "/.well-known/openid-configuration":
                return self._json(start_response, self.provider.provider_configuration.to_dict())
            if path == "/jwks":
                return self._json(start_response, self.provider.jwks)
            if path == "/authorize":
                request = self.provider.parse_authentication_request(query, headers)
                response = self.provider.authorize(request, self.signed_in_user)
                location = response.request(request["redirect_uri"], False)
                start_response("302 Found", [("Location", location)])
                return [b""]
            if path == "/token":
                response = self.provider.handle_token_request(body, headers)
                return self._json(start_response, response.to_dict())
            if path == "/userinfo":
                response = self.provider.handle_userinfo_request(body or query, headers)
                return self._json(start_response, response.to_dict())
        except (InvalidAuthenticationRequest, OAuthError) as error:
            return self._json(start_response, {"error": str(error)}, "400 Bad Request")
        return self._json(start_response, {"error": "not found"}, "404 Not Found")

    def _json(self, start_response, data, status="200 OK"):
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(data).encode()]

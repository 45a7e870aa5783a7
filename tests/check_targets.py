"""The outside world checks probe, as real servers on 127.0.0.1: an HTTP(S) server with a few
behaviours, a TCP listener that can close and open again, and a DNS server (dnslib)."""

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dnslib
from dnslib.server import BaseResolver, DNSServer


class TargetHandler(BaseHTTPRequestHandler):
    """/ok answers 200 with a keyword; /health.json with JSON; /status/<n> answers n; /loop
    redirects to itself;
    /to-ok redirects to /ok; /slow answers only once the server's ``release`` event is set."""

    def do_GET(self) -> None:
        if self.path == "/ok":
            self._answer(200, b"all systems nominal")
        elif self.path.startswith("/status/"):
            self._answer(int(self.path.rsplit("/", 1)[1]), b"as asked")
        elif self.path == "/health.json":
            self._answer(200, b'{"status": "ok", "ready": true, "checks": [{"state": "degraded"}]}')
        elif self.path == "/loop":
            self._answer(302, b"", {"Location": "/loop"})
        elif self.path == "/to-ok":
            self._answer(301, b"", {"Location": "/ok"})
        elif self.path == "/slow":
            self.server.release.wait(timeout=10)
            self._answer(200, b"late")
        else:
            self._answer(404, b"no such page")

    def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


class HttpTarget:
    """An HTTP server on 127.0.0.1 (HTTPS when given a certificate and key file)."""

    def __init__(self, tls_files: tuple[Path, Path] | None = None):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), TargetHandler)
        self.server.daemon_threads = True
        self.server.release = threading.Event()
        scheme = "http"
        if tls_files is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls_files)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.release.set()
        self.server.shutdown()
        self.server.server_close()


class TcpListener:
    """A listening socket on 127.0.0.1 that can be closed and opened again on its port."""

    def __init__(self):
        self.port = 0
        self.open()

    def open(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", self.port))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]

    def close(self) -> None:
        self.socket.close()


class FixedResolver(BaseResolver):
    """Answers A queries for its one name with one address; other names get NXDOMAIN."""

    def __init__(self, name: str, address: str):
        self.name, self.address = name, address

    def resolve(self, request, handler):
        reply = request.reply()
        asked = request.q.qname
        if str(asked).rstrip(".") == self.name and request.q.qtype == dnslib.QTYPE.A:
            reply.add_answer(dnslib.RR(asked, dnslib.QTYPE.A, rdata=dnslib.A(self.address)))
        else:
            reply.header.rcode = dnslib.RCODE.NXDOMAIN
        return reply


class DnsTarget:
    """A DNS server on 127.0.0.1 (UDP) answering for one name."""

    def __init__(self, name: str, address: str):
        self.server = DNSServer(
            FixedResolver(name, address), address="127.0.0.1", port=0, logger=_QuietLogger()
        )
        self.server.start_thread()
        self.port = self.server.server.server_address[1]

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()


class _QuietLogger:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None

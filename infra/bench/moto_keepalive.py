#!/usr/bin/env python3
"""moto's server with HTTP/1.1 keep-alive, for infra/bench/compare_receiver.sh.

The stock `moto_server` runs werkzeug's request handler as HTTP/1.0 and answers every request
with `Connection: close`, so each AWS call of a receiver under test would open a new TCP
connection and the figures would measure connects. AWS endpoints keep connections open; this
launcher runs the same WSGI application (moto's DomainDispatcherApplication) under werkzeug's
threaded server with the handler speaking HTTP/1.1, which keeps them open too.

    ~/.cache/twilio-events/moto-5.2.5/bin/python infra/bench/moto_keepalive.py --port 5098
"""

import argparse
import os

from werkzeug.serving import run_simple
from werkzeug.wsgi import LimitedStream

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class KeepAliveHandler(MotoRequestHandler):
    """Werkzeug's handler always answers `Connection: close` (and drains the socket after each
    answer, which would eat the next request of a kept-alive connection). This one runs the
    application, answers with a Content-Length, and leaves the connection open; the request
    body is bounded by its Content-Length and read to its end before the next request."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without this, Nagle's algorithm holds the body back
    # until the client's delayed ACK (40 ms) on every answer of a kept-alive connection.
    disable_nagle_algorithm = True

    def run_wsgi(self):
        environ = self.make_environ()
        length = int(self.headers.get("Content-Length") or 0)
        body_in = LimitedStream(self.rfile, length)
        environ["wsgi.input"] = body_in
        state = {}

        def start_response(status, headers, exc_info=None):
            state["status"], state["headers"] = status, headers
            return lambda data: state.setdefault("written", []).append(data)

        try:
            result = self.server.app(environ, start_response)
            try:
                body = b"".join(state.get("written", [])) + b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:  # an emulator bug: answer 500 and close, as werkzeug would
            self.close_connection = True
            body, state["status"], state["headers"] = b"", "500 INTERNAL SERVER ERROR", []
        body_in.exhaust()
        code, _, reason = state["status"].partition(" ")
        self.send_response(int(code), reason)
        for key, value in state["headers"]:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if environ["REQUEST_METHOD"] != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_request(self, code="-", size="-"):
        pass  # one line per AWS call would cost the emulator more than the call


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, request_handler=KeepAliveHandler)


if __name__ == "__main__":
    main()

"""A stand-in for a Prometheus server: answers /api/v1/query with one sample.

The demo's metrics-scaler operator queries it. The value comes from the command line, so the
demo can decide what the scaler should see. Loopback only.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QueryHandler(BaseHTTPRequestHandler):
    value = "0"

    def do_GET(self):
        if not self.path.startswith("/api/v1/query"):
            self.send_error(404)
            return
        body = json.dumps({
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, QueryHandler.value]}]},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port_file, QueryHandler.value = sys.argv[1], sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", 0), QueryHandler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()

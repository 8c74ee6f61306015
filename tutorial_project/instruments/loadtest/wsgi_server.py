"""A WSGI server with a fixed pool of threads (lesson 08).

Run it with ``python -m tutorial_project.instruments.loadtest.wsgi_server``.

It stands for the classic WSGI deployment (gunicorn ``--threads``, mod_wsgi): at most
``--threads`` requests are served at once, each on its own thread, and the others wait in
line. Built on the standard library's wsgiref, serving Django's WSGI handler, on 127.0.0.1.
One request per connection (HTTP/1.0), so a waiting connection never holds a thread.
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class PooledWSGIServer(ThreadingMixIn, WSGIServer):
    request_queue_size = 1024  # wsgiref's default (5) would drop connections under load
    threads = 4

    def process_request(self, request, client_address):
        if not hasattr(self, "pool"):
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="wsgi")
        self.pool.submit(self.process_request_thread, request, client_address)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # no access log: it would cost more than the view
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=PooledWSGIServer.threads)
    options = parser.parse_args()
    PooledWSGIServer.threads = options.threads

    from tutorial_project.wsgi import application

    server = make_server("127.0.0.1", options.port, application, PooledWSGIServer, QuietHandler)
    with server:
        server.serve_forever()


if __name__ == "__main__":
    main()

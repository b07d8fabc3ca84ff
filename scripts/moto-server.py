"""moto server with one lock around DynamoDB requests.

moto's DynamoDB backend is not safe under concurrent requests: `TransactWriteItems` copies the
table while other request threads write to it, and a cancelled transaction restores that copy,
erasing writes made in between (seen as 500s "dictionary changed size during iteration" and as
messages stored twice). Real DynamoDB applies each request atomically; this lock gives moto the
same per-request atomicity, so the tests can race writers on one table for real. Other services
(SQS long polls among them) stay concurrent.

Usage: moto-server.py HOST PORT
"""

import sys
import threading

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB_LOCK = threading.Lock()


def locking_dynamodb(app):
    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with DYNAMODB_LOCK:
                # Consume the whole response inside the lock.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        locking_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()

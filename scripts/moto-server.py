"""moto server with one lock around DynamoDB requests, cheap transaction rollbacks and a route to
SES's sent mail.

moto's DynamoDB backend is not safe under concurrent requests: `TransactWriteItems` copies the
table while other request threads write to it, and a cancelled transaction restores that copy,
erasing writes made in between (seen as 500s "dictionary changed size during iteration" and as
messages stored twice). Real DynamoDB applies each request atomically; this lock gives moto the
same per-request atomicity, so the tests can race writers on one table for real. Other services
(SQS long polls among them) stay concurrent.

For its rollback, moto's `TransactWriteItems` deep-copies the whole table once per item of the
transaction: ~0.2 s per transaction on a table of a few thousand items, and as moto keeps every
model object it ever made (for `/moto-api/data.json`), the copies are never freed (moto grew to
~3 GB over the tests; a test writing 1000 messages took minutes). Under the lock nothing else
writes during a transaction, so this server keeps a copy of only the items the transaction
touches and puts those back when it fails, as moto's copy of the table would have.

GET /crossdesk/ses/sent answers the mail moto's SES (and SES v2) sent, in sending order, as a JSON
array: one object per message with moto's `kind` (`RawMessage` for SendRawEmail and raw SES v2
mail: `id`, `source`, `destinations`, `raw_data`; `Message` for SendEmail and simple SES v2 mail:
`id`, `source`, `destinations` {`ToAddresses`, ...}, `subject`, `body`; `TemplateMessage`,
`BulkTemplateMessage`). `?id=ID` keeps only the message with SES message id ID. Tests read sent
mail here, not from `/moto-api/data.json`, which serializes every object moto holds.

Usage: moto-server.py HOST PORT
"""

import copy
import json
import sys
import threading
import types
from urllib.parse import parse_qs

import moto.dynamodb.models
from moto.dynamodb.models import DynamoDBBackend, DynamoType, Table
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.ses.models import ses_backends
from werkzeug.serving import run_simple

DYNAMODB_LOCK = threading.Lock()
SES_SENT_PATH = "/crossdesk/ses/sent"


def locking_dynamodb(app):
    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with DYNAMODB_LOCK:
                # Consume the whole response inside the lock.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def _deepcopy_except_tables(value, memo=None):
    """`copy.deepcopy`, except that the "copy" of a table is the table itself."""
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_key(table, op):
    """The (hash, range) key a transaction item names, or None if moto will refuse it."""
    try:
        attrs = op["Item"] if "Item" in op else op["Key"]
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return hash_key, range_key
    except (KeyError, TypeError, AttributeError):
        return None


def _put_back(table, hash_key, range_key, item):
    """Restores one item as it was (None: absent)."""
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def rollback_touched_items_only():
    """Makes `TransactWriteItems` keep and restore only the items it touches (see above)."""
    transact_write_items = DynamoDBBackend.transact_write_items
    moto.dynamodb.models.copy = types.SimpleNamespace(
        **{**vars(copy), "deepcopy": _deepcopy_except_tables}
    )

    def transact_write_items_keeping_touched_items(self, transact_items):
        kept = []
        for entry in transact_items:
            for op in entry.values():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                key = _item_key(table, op) if table is not None else None
                if key is not None:
                    kept.append((table, *key, copy.deepcopy(table.get_item(*key))))
        try:
            return transact_write_items(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(kept):
                _put_back(table, hash_key, range_key, item)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items_keeping_touched_items


def _message_ids(message):
    return getattr(message, "ids", None) or [getattr(message, "id", None)]


def ses_sent_route(app):
    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") != SES_SENT_PATH:
            return app(environ, start_response)
        wanted = parse_qs(environ.get("QUERY_STRING", "")).get("id", [None])[0]
        sent = []
        # Snapshots (list() of a dict or list is atomic): other threads keep sending.
        for regions in list(dict.values(ses_backends)):
            for backend in list(dict.values(regions)):
                for message in list(backend.sent_messages):
                    if wanted is None or wanted in _message_ids(message):
                        sent.append({"kind": type(message).__name__, **vars(message)})
        body = json.dumps(sent, default=str).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return wrapped


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    rollback_touched_items_only()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        ses_sent_route(locking_dynamodb(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()

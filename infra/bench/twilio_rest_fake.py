#!/usr/bin/env python3
"""A fake of Twilio's REST API (2010-04-01 Messages and Calls) for the fault campaign's outage
part: serves the JSON lines `twilio-events simulate --resources FILE` wrote (each message and
call as the API shows it once the traffic has happened), with HTTP Basic auth (the account SID
and the Auth Token given), `GET .../Messages/{Sid}.json`, `.../Calls/{Sid}.json`, and the lists
`.../Messages.json` (DateSent> / DateSent<) and `.../Calls.json` (StartTime> / StartTime<),
paged through next_page_uri. Standard library only.

    twilio_rest_fake.py RESOURCES PORT AUTH_TOKEN
"""
import base64
import json
import sys
from datetime import datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

resources_file, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
held = {"Messages": {}, "Calls": {}}
account = None
with open(resources_file) as f:
    for line in f:
        r = json.loads(line)
        account = r["account_sid"]
        held["Messages" if r["kind"] == "message" else "Calls"][r["sid"]] = r
expected = "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()
PAGE = 1000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Authorization") != expected:
            return self.answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
        url = urlsplit(self.path)
        prefix = f"/2010-04-01/Accounts/{account}/"
        if not url.path.startswith(prefix):
            return self.answer(404, {"code": 20404, "message": "Not found", "status": 404})
        rest = url.path[len(prefix):].split("/")
        if len(rest) == 2 and rest[0] in held:
            r = held[rest[0]].get(rest[1].removesuffix(".json"))
            if r is None:
                return self.answer(404, {"code": 20404, "message": "Not found", "status": 404})
            return self.answer(200, r)
        if len(rest) == 1 and rest[0] in ("Messages.json", "Calls.json"):
            kind = rest[0].removesuffix(".json")
            field, attr = ("DateSent", "date_sent") if kind == "Messages" else ("StartTime", "start_time")
            q = dict(parse_qsl(url.query))
            after = datetime.fromisoformat(q[field + ">"].replace("Z", "+00:00"))
            before = datetime.fromisoformat(q[field + "<"].replace("Z", "+00:00"))
            page = int(q.get("Page", "0"))
            matching = sorted(
                (r for r in held[kind].values() if after <= parsedate_to_datetime(r[attr]) <= before),
                key=lambda r: r["sid"],
            )
            items = matching[page * PAGE:(page + 1) * PAGE]
            more = (page + 1) * PAGE < len(matching)
            filters = f"{quote(field + '>')}={quote(q[field + '>'])}&{quote(field + '<')}={quote(q[field + '<'])}&PageSize={PAGE}"
            return self.answer(200, {
                kind.lower(): items,
                "next_page_uri": f"{url.path}?{filters}&Page={page + 1}" if more else None,
                "page": page, "page_size": PAGE,
            })
        return self.answer(404, {"code": 20404, "message": "Not found", "status": 404})


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

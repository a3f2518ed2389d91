#!/usr/bin/env python3
"""Load for infra/bench/slow_clients.sh, standard library only. Two roles, run as two processes
so that neither's scheduling shows in the other's figures:

  genuine  signed deliveries (one event each, unique ids) at a steady rate, each on its own
           connection as a webhook sender opens them; prints the latency percentiles and counts
           as JSON.
  slow     holds N connections that never finish a request, a quarter of each kind, each
           reopened as soon as the server closes it; prints, per kind, how long the server
           took to close them, and any left open past its timeout, as JSON.

The slow kinds and the timeout each must meet:
  silent     connects and sends nothing                          header timeout, from connect
  slow-head  sends a request line, then a header line a second   header timeout, from connect
  slow-body  sends a signed head, then its body a byte a second  body timeout, from the head
  idle       sends a GET (answered 405), then stays idle         idle timeout, from the answer
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import signal
import time


def signed_request(port, token, body, connection="close"):
    """A POST of `body` to /twilio/events, signed as Twilio signs JSON (bodySHA256, HMAC-SHA1)."""
    digest = hashlib.sha256(body).hexdigest()
    target = f"/twilio/events?bodySHA256={digest}"
    url = f"http://127.0.0.1:{port}{target}"
    signature = base64.b64encode(
        hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()
    ).decode()
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Twilio-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {connection}\r\n\r\n"
    )
    return head.encode()


def event(run, i, pad=0):
    sid = f"SM{i:032x}"
    data = {
        "messageSid": sid,
        "accountSid": "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "messageStatus": "DELIVERED",
        "from": "+12065550100",
        "to": "+14155550199",
    }
    if pad:
        data["pad"] = "x" * pad
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "type": "com.twilio.messaging.message.delivered",
                "source": f"/2010-04-01/Accounts/AC0a1b2c3d4e5f60718293a4b5c6d7e8f9/Messages/{sid}.json",
                "id": f"EZ{run}{i:016x}",
                "time": "2026-11-26T10:00:00.000Z",
                "datacontenttype": "application/json",
                "data": data,
            }
        ],
        separators=(",", ":"),
    ).encode()


async def read_response(reader):
    """Status of one response read whole (its Content-Length body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


async def genuine(args):
    run = f"{int(time.time() * 1000) % 0xFFFFFFFFFFFFFF:014x}"
    latencies, statuses, errors = [], {}, 0

    async def one(i):
        nonlocal errors
        body = event(run, i)
        request = signed_request(args.port, args.token, body) + body
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", args.port), args.answer_timeout
            )
            writer.write(request)
            status = await asyncio.wait_for(read_response(reader), args.answer_timeout)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            errors += 1

    tasks = []
    started = time.perf_counter()
    total = int(args.seconds * args.rate)
    for i in range(total):
        # A steady rate: each delivery leaves at its slot, whatever the others are doing.
        delay = started + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    latencies.sort()
    print(
        json.dumps(
            {
                "deliveries": total,
                "rate_per_s": args.rate,
                "ok_200": statuses.get(200, 0),
                "other_statuses": {str(k): v for k, v in statuses.items() if k != 200},
                "errors_or_timeouts": errors,
                "p50_ms": round(percentile(latencies, 0.50), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2),
                "max_ms": round(latencies[-1] if latencies else 0.0, 2),
            }
        )
    )


class Kind:
    def __init__(self, name, timeout):
        self.name, self.timeout = name, timeout
        self.closed_after = []  # seconds from the start of the timed phase to the server's close
        self.open_at_end = []  # ages of connections still open when the run ended
        self.refused = 0


async def wait_closed(reader):
    """Reads (and discards) until the server closes the connection."""
    try:
        while await reader.read(65536):
            pass
    except OSError:
        pass  # a reset is a close too


async def slow_connection(kind, args, stop):
    """Opens connections of `kind` one after the other until `stop`, timing each close."""
    trickle_every = 1.0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        except OSError:
            kind.refused += 1
            await asyncio.sleep(0.1)
            continue
        since = time.monotonic()
        trickler = closed = stopped = None
        try:
            if kind.name == "slow-head":
                writer.write(b"POST /twilio/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")

                async def headers():
                    while True:
                        await asyncio.sleep(trickle_every)
                        writer.write(b"X-Slow: 1\r\n")

                trickler = asyncio.create_task(headers())
            elif kind.name == "slow-body":
                body = event("slow", 0, pad=2000)
                writer.write(signed_request(args.port, args.token, body, "keep-alive"))

                async def trickle_body():
                    for byte in body:
                        await asyncio.sleep(trickle_every)
                        writer.write(bytes([byte]))

                trickler = asyncio.create_task(trickle_body())
            elif kind.name == "idle":
                writer.write(b"GET /twilio/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                # The answer (405) first: the idle time counts from it.
                await read_response(reader)
                since = time.monotonic()
            closed = asyncio.create_task(wait_closed(reader))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
            if closed.done():
                kind.closed_after.append(time.monotonic() - since)
            else:
                kind.open_at_end.append(time.monotonic() - since)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            kind.closed_after.append(time.monotonic() - since)
        finally:
            for task in (trickler, closed, stopped):
                if task:
                    task.cancel()
            writer.close()


async def slow(args):
    kinds = [
        Kind("silent", args.header_timeout),
        Kind("slow-head", args.header_timeout),
        Kind("slow-body", args.body_timeout),
        Kind("idle", args.idle_timeout),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    tasks = [
        asyncio.create_task(slow_connection(kinds[i % len(kinds)], args, stop))
        for i in range(args.connections)
    ]
    # Ready once every connection is open (the sender waits for this line).
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    try:
        await asyncio.wait_for(stop.wait(), args.seconds)
    except asyncio.TimeoutError:
        stop.set()
    await asyncio.gather(*tasks)
    report = {"connections": args.connections, "grace_s": args.grace, "kinds": {}}
    late_total = 0
    for kind in kinds:
        closed = sorted(kind.closed_after)
        # Closed too early would mean a genuine slow client is cut off; too late, the limit
        # does not hold.
        late = [t for t in closed if t > kind.timeout + args.grace]
        early = [t for t in closed if t < kind.timeout - 0.2]
        overdue = [t for t in kind.open_at_end if t > kind.timeout + args.grace]
        late_total += len(late) + len(overdue)
        report["kinds"][kind.name] = {
            "timeout_s": kind.timeout,
            "closed_by_server": len(closed),
            "closed_after_s_min": round(closed[0], 2) if closed else None,
            "closed_after_s_p50": round(percentile(closed, 0.5), 2) if closed else None,
            "closed_after_s_max": round(closed[-1], 2) if closed else None,
            "closed_late": len(late),
            "closed_early": len(early),
            "still_open_at_end": len(kind.open_at_end),
            "open_past_timeout_at_end": len(overdue),
            "connect_errors": kind.refused,
        }
    report["not_closed_within_timeout"] = late_total
    print(json.dumps(report), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["genuine", "slow"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--rate", type=float, default=50.0, help="genuine deliveries per second")
    parser.add_argument("--answer-timeout", type=float, default=5.0, help="Twilio's wait")
    parser.add_argument("--connections", type=int, default=300, help="slow connections held")
    parser.add_argument("--header-timeout", type=float, default=5.0)
    parser.add_argument("--body-timeout", type=float, default=10.0)
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=1.0, help="lateness still on time (s)")
    args = parser.parse_args()
    asyncio.run(genuine(args) if args.role == "genuine" else slow(args))


if __name__ == "__main__":
    main()

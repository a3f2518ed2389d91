#!/usr/bin/env python3
"""A Twilio Event Streams receiver written the way a team would by hand, the reference for
infra/bench/compare_receiver.sh.

Per delivery, what a typical Python webhook handler does:
  1. twilio.request_validator.RequestValidator(auth_token).validate(url, body, signature)
     (Twilio's official helper; it checks the URL's bodySHA256 against the body);
  2. json.loads(body): a list of CloudEvents;
  3. per event: DynamoDB put_item with ConditionExpression attribute_not_exists(pk) on the
     event id (dedup); if it succeeds, Kinesis put_record of the event (partition key: the
     event's source); a ConditionalCheckFailedException means a duplicate: skip.
One delivery at a time (as one Lambda instance handles them), boto3 clients created once.

    python reference_receiver.py --cases cases.jsonl --token T   # AWS_ENDPOINT_URL set

Prints one JSON object: deliveries, ok, new_events, ns_per_delivery (wall clock),
cpu_us_per_delivery (this process's CPU time, the emulator's excluded), peak_rss_kb.
"""

import argparse
import json
import os
import resource
import sys
import time

import boto3
from botocore.exceptions import ClientError
from twilio.request_validator import RequestValidator


def peak_rss_kb():
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def create_resources(ddb, kinesis, table, stream):
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    for _ in range(100):
        status = kinesis.describe_stream_summary(StreamName=stream)[
            "StreamDescriptionSummary"
        ]["StreamStatus"]
        if status == "ACTIVE":
            return
        time.sleep(0.1)
    raise SystemExit(f"stream {stream} never became ACTIVE")


def handle(validator, ddb, kinesis, table, stream, case):
    """Returns (HTTP status, new events)."""
    if not validator.validate(case["url"], case["body"], case["signature"]):
        return 403, 0
    try:
        events = json.loads(case["body"])
    except ValueError:
        return 400, 0
    new = 0
    for event in events:
        try:
            ddb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": event["id"]},
                    "expires_at": {"N": str(int(time.time()) + 7 * 86400)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as e:
            if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
                continue  # a duplicate
            return 503, new
        kinesis.put_record(
            StreamName=stream,
            Data=json.dumps(event, separators=(",", ":")).encode(),
            PartitionKey=event.get("source") or event["id"],
        )
        new += 1
    return 200, new


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", required=True)
    parser.add_argument("--token", default="compare-token")
    args = parser.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit("set AWS_ENDPOINT_URL to the emulator (moto_server)")
    with open(args.cases) as f:
        cases = [json.loads(line) for line in f if line.strip()]
    ddb = boto3.client("dynamodb")
    kinesis = boto3.client("kinesis")
    suffix = os.getpid()
    table, stream = f"cmp-py-dedup-{suffix}", f"cmp-py-events-{suffix}"
    create_resources(ddb, kinesis, table, stream)
    validator = RequestValidator(args.token)
    rss_before = peak_rss_kb()
    ok = new_events = 0
    cpu_before = time.process_time()
    started = time.perf_counter_ns()
    for case in cases:
        status, new = handle(validator, ddb, kinesis, table, stream, case)
        if status == 200:
            ok += 1
            new_events += new
    elapsed = time.perf_counter_ns() - started
    cpu = time.process_time() - cpu_before
    print(
        json.dumps(
            {
                "receiver": "python-twilio-boto3",
                "deliveries": len(cases),
                "ok": ok,
                "new_events": new_events,
                "elapsed_s": elapsed / 1e9,
                "ns_per_delivery": elapsed / max(1, len(cases)),
                "cpu_us_per_delivery": cpu * 1e6 / max(1, len(cases)),
                "rss_kb_before": rss_before,
                "peak_rss_kb": peak_rss_kb(),
            }
        )
    )
    return 0 if ok == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())

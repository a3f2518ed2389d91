#!/usr/bin/env python3
"""The arithmetic of docs/cost.md: monthly cost of the template's defaults at 1 million, 100
million and 1 billion events, line by line (each line names the template resource it comes
from), beside what Twilio's own Kinesis sink would cost the customer for the same volume.

    python3 infra/latency/cost_model.py                 # the tables of docs/cost.md
    python3 infra/latency/cost_model.py --cpu-ms 0.4    # with another CPU per delivery

Prices: AWS list prices, US East (N. Virginia), on demand, no free tier (docs/cost.md says where
each comes from and when it was read). Change PRICES for another region.
"""
import argparse
import math

HOURS = 730  # hours in AWS's billing month
SECONDS = HOURS * 3600

PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm": 0.0000133334,
    "http_api_request": 1.00 / 1e6,  # first 300 M; $0.90 per million above
    "http_api_request_over_300m": 0.90 / 1e6,
    "kinesis_shard_hour": 0.015,
    "kinesis_put_unit": 0.014 / 1e6,  # 25 KB payload units
    "kinesis_extended_retention_shard_hour": 0.02,
    "kinesis_on_demand_stream_hour": 0.04,
    "kinesis_on_demand_gb_in": 0.08,
    "kinesis_on_demand_gb_out": 0.04,
    "ddb_wru": 0.625 / 1e6,
    "ddb_rru": 0.125 / 1e6,
    "ddb_gb_month": 0.25,
    "ddb_pitr_gb_month": 0.20,
    "cw_metric_month": 0.30,
    "cw_logs_gb_in": 0.50,
    "cw_logs_gb_month": 0.03,
    "cw_alarm_metric": 0.10,
    "cw_dashboard": 3.00,
    "xray_trace": 5.00 / 1e6,
    "secret_month": 0.40,
    "kms_request": 0.03 / 1e4,
}

GB = 1024**3


def lambda_ms(cpu_ms, io_ms, memory_mb):
    """Duration of one invocation: its CPU at the memory size's share of a vCPU (1,769 MB = one
    vCPU), plus the time it waits on the network."""
    return cpu_ms * 1769 / memory_mb + io_ms


def batches(events, window_s, batch_size=100):
    """Invocations of a Kinesis consumer: a batch opens with its first record and closes after
    the batching window or at batch_size records (events spread evenly over the month)."""
    rate = events / SECONDS
    per_batch = min(batch_size, 1 + rate * window_s)
    return events / per_batch


def ours(events, a):
    """The template's defaults (docs/cost.md), crm-sync deployed, line by line."""
    p = PRICES
    peak = events / SECONDS * a.peak_factor
    shards = max(1, math.ceil(peak / (1000 * a.shard_headroom)))
    ingest_ms = lambda_ms(a.cpu_ms, a.io_ms, a.ingest_mb)
    crm_inv, quota_inv = batches(events, 1), batches(events, 5)
    api_first = min(events, 300e6)
    # Dedup items live DedupWindowHours (48 h, ~200 B); the ledger one ~300 B item per message
    # or call (~3 events each), kept ~30 days; the counters are a few items per quota window.
    dedup_gb = events * 48 / HOURS * 200 / GB
    ledger_gb = events / 3 * 300 / GB
    storage_gb = dedup_gb + ledger_gb
    lines = [
        ("TwilioHttpApi", "HTTP API requests", events,
         api_first * p["http_api_request"] + (events - api_first) * p["http_api_request_over_300m"]),
        ("IngestFunction", f"requests + {ingest_ms:.1f} ms × {a.ingest_mb} MB each",
         events, events * (p["lambda_request"] + ingest_ms / 1000 * a.ingest_mb / 1024 * p["lambda_gb_s_arm"])),
        ("DedupTable", "claim + complete = 2 WRU per event", events, events * 2 * p["ddb_wru"]),
        ("EventStream", f"{shards} provisioned shard(s) × {HOURS} h", shards, shards * HOURS * p["kinesis_shard_hour"]),
        ("EventStream", "PUT payload units (1 per event)", events, events * p["kinesis_put_unit"]),
        ("CrmSyncFunction", f"{crm_inv / 1e6:.2f} M batches, {a.crm_ms} ms each at 128 MB",
         crm_inv, crm_inv * (p["lambda_request"] + a.crm_ms / 1000 * 128 / 1024 * p["lambda_gb_s_arm"])),
        ("LedgerTable", "2 WRU + 1 RRU per status update", events, events * (2 * p["ddb_wru"] + p["ddb_rru"])),
        ("QuotaAlertFunction", f"{quota_inv / 1e6:.2f} M batches, 20 ms + 0.5 ms/record at 128 MB",
         quota_inv, (quota_inv * p["lambda_request"]
                     + (quota_inv * 20 + events * 0.5) / 1000 * 128 / 1024 * p["lambda_gb_s_arm"])),
        ("CounterTable", f"{a.counted:.0%} of events counted: 4 WRU + 1 RRU each", events,
         events * a.counted * (4 * p["ddb_wru"] + p["ddb_rru"])),
        ("DedupTable, LedgerTable", f"storage: {storage_gb:,.1f} GB (+ PITR on the ledger)", 0,
         dedup_gb * p["ddb_gb_month"] + ledger_gb * (p["ddb_gb_month"] + p["ddb_pitr_gb_month"])),
        ("IngestLogGroup, ApiAccessLogGroup, consumers' log groups",
         f"{a.ingest_log_kb} KB per ingest invocation + {a.access_log_kb} KB access log + 1.5 KB per batch, kept {a.log_days} days",
         events, 0.0),
        ("TwilioEvents metrics (EMF)", f"{a.metrics} metric × dimension sets active every hour", a.metrics,
         a.metrics * p["cw_metric_month"]),
        ("alarms (AWS::CloudWatch::Alarm)", "22 alarm metrics", 22, 22 * p["cw_alarm_metric"]),
        ("PipelineDashboard", "1 dashboard", 1, p["cw_dashboard"]),
        ("TwilioSecret", "1 secret, read at cold starts", 1, p["secret_month"]),
        ("EventStream (KMS aws/kinesis)", "data-key calls, every ~5 min per credential", 0, 1.0),
    ]
    log_gb = (events * (a.ingest_log_kb + a.access_log_kb) + (crm_inv + quota_inv) * 1.5) * 1024 / GB
    logs = log_gb * p["cw_logs_gb_in"] + log_gb * a.log_days / 30 * p["cw_logs_gb_month"]
    lines[10] = (lines[10][0], lines[10][1] + f" = {log_gb:,.1f} GB", events, logs)
    return lines


def twilio_kinesis_sink(events, a):
    """Twilio's Kinesis sink into a stream of the same shape, read by the same consumers: no
    HTTP API, no ingest, no dedup table, no ingest logs or metrics, no Twilio secret."""
    drop = {"TwilioHttpApi", "IngestFunction", "DedupTable", "TwilioSecret"}
    lines = []
    for resource, what, n, cost in ours(events, a):
        if resource in drop:
            continue
        if resource.startswith("IngestLogGroup"):
            crm_inv, quota_inv = batches(events, 1), batches(events, 5)
            log_gb = (crm_inv + quota_inv) * 1.5 * 1024 / GB
            cost = log_gb * PRICES["cw_logs_gb_in"] + log_gb * a.log_days / 30 * PRICES["cw_logs_gb_month"]
            what = f"consumers' log groups only: {log_gb:,.1f} GB"
        if resource.startswith("TwilioEvents metrics"):
            n = a.metrics - a.ingest_metrics
            cost = n * PRICES["cw_metric_month"]
            what = f"{n} metric × dimension sets (the consumers')"
        if resource.startswith("alarms"):
            n = 22 - 7  # ingest's own alarms (errors, 5xx, signatures, publish, store, latency, no events) go
            cost = n * PRICES["cw_alarm_metric"]
            what = f"{n} alarm metrics (ingest's 7 gone)"
        if resource.startswith("DedupTable, LedgerTable"):
            ledger_gb = events / 3 * 300 / GB
            cost = ledger_gb * (PRICES["ddb_gb_month"] + PRICES["ddb_pitr_gb_month"])
            resource, what = "LedgerTable", f"storage: {ledger_gb:,.1f} GB + PITR"
        lines.append((resource, what, n, cost))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-ms", type=float, default=0.72, help="ingest CPU per delivery at one vCPU")
    ap.add_argument("--io-ms", type=float, default=25.0, help="ingest's wait on DynamoDB and Kinesis")
    ap.add_argument("--ingest-mb", type=int, default=128)
    ap.add_argument("--crm-ms", type=float, default=300.0, help="crm-sync per batch (CRM calls)")
    ap.add_argument("--counted", type=float, default=0.05, help="share of events a quota counts")
    ap.add_argument("--peak-factor", type=float, default=5.0, help="peak over average rate")
    ap.add_argument("--shard-headroom", type=float, default=0.7, help="use of a shard at the peak")
    ap.add_argument("--metrics", type=int, default=18)
    ap.add_argument("--ingest-metrics", type=int, default=7)
    ap.add_argument("--ingest-log-kb", type=float, default=1.3)
    ap.add_argument("--access-log-kb", type=float, default=0.4)
    ap.add_argument("--log-days", type=int, default=30)
    a = ap.parse_args()
    for events in (1e6, 100e6, 1e9):
        for name, model in (("this project's defaults", ours), ("Twilio's Kinesis sink", twilio_kinesis_sink)):
            lines = model(events, a)
            total = sum(c for *_, c in lines)
            print(f"\n### {events / 1e6:,.0f} M events a month: {name}: ${total:,.2f}\n")
            print("| resource | what | per month |\n|---|---|---|")
            for resource, what, _, cost in lines:
                print(f"| {resource} | {what} | ${cost:,.2f} |")
            print(f"| **total** | | **${total:,.2f}** |")


if __name__ == "__main__":
    main()

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
    """The template's defaults (docs/cost.md), crm-sync deployed: (logical id, what, the
    volume's own figure, cost) per line."""
    p = PRICES
    peak = events / SECONDS * a.peak_factor
    shards = max(1, math.ceil(peak / (1000 * a.shard_headroom)))
    ingest_ms = lambda_ms(a.cpu_ms, a.io_ms, a.ingest_mb)
    crm_inv, quota_inv = batches(events, 1), batches(events, 5)
    api_first = min(events, 300e6)
    # Dedup items live DedupWindowHours (48 h, ~200 B); the ledger keeps one ~300 B item per
    # message or call (~3 events each); the counters are a few items per quota window.
    dedup_gb = events * 48 / HOURS * 200 / GB
    ledger_gb = events / 3 * 300 / GB
    log_gb = (events * (a.ingest_log_kb + a.access_log_kb) + (crm_inv + quota_inv) * 1.5) * 1024 / GB
    gb_s = 128 / 1024 * p["lambda_gb_s_arm"]
    return [
        ("TwilioHttpApi", "requests ($0.90 per million above 300 M)", "",
         api_first * p["http_api_request"] + (events - api_first) * p["http_api_request_over_300m"]),
        ("IngestFunction", f"requests + {ingest_ms:.1f} ms × {a.ingest_mb} MB each (latency model)", "",
         events * (p["lambda_request"] + ingest_ms / 1000 * a.ingest_mb / 1024 * p["lambda_gb_s_arm"])),
        ("DedupTable", "claim + complete = 2 WRU per event", "", events * 2 * p["ddb_wru"]),
        ("EventStream", f"provisioned shards × {HOURS} h (peak {a.peak_factor:g}× the average, "
         f"shards {a.shard_headroom:.0%} used)", f"{shards} shard{'s' if shards > 1 else ''}",
         shards * HOURS * p["kinesis_shard_hour"]),
        ("EventStream", "PUT payload units (1 per event)", "", events * p["kinesis_put_unit"]),
        ("CrmSyncFunction", f"batches (1 s window) × (request + {a.crm_ms:.0f} ms at 256 MB)",
         f"{crm_inv / 1e6:.2f} M", crm_inv * (p["lambda_request"] + a.crm_ms / 1000 * 2 * gb_s)),
        ("LedgerTable", "2 WRU + 1 RRU per status update", "", events * (2 * p["ddb_wru"] + p["ddb_rru"])),
        ("QuotaAlertFunction", "batches (5 s window) × (request + 20 ms + 0.5 ms a record at 128 MB)",
         f"{quota_inv / 1e6:.2f} M",
         quota_inv * p["lambda_request"] + (quota_inv * 20 + events * 0.5) / 1000 * gb_s),
        ("CounterTable", f"{a.counted:.0%} of events counted: 4 WRU + 1 RRU each", "",
         events * a.counted * (4 * p["ddb_wru"] + p["ddb_rru"])),
        ("DedupTable, LedgerTable", "storage, PITR on the ledger", f"{dedup_gb + ledger_gb:,.1f} GB",
         dedup_gb * p["ddb_gb_month"] + ledger_gb * (p["ddb_gb_month"] + p["ddb_pitr_gb_month"])),
        ("IngestLogGroup, ApiAccessLogGroup, consumers' log groups",
         f"{a.ingest_log_kb} KB per ingest invocation + {a.access_log_kb} KB access log + 1.5 KB "
         f"per consumer batch, kept {a.log_days} days", f"{log_gb:,.1f} GB",
         log_gb * p["cw_logs_gb_in"] + log_gb * a.log_days / 30 * p["cw_logs_gb_month"]),
        ("TwilioEvents metrics (EMF)", f"{a.metrics} metric × dimension sets active every hour", "",
         a.metrics * p["cw_metric_month"]),
        ("the alarms (AWS::CloudWatch::Alarm)", "22 alarm metrics", "", 22 * p["cw_alarm_metric"]),
        ("PipelineDashboard", "1 dashboard", "", p["cw_dashboard"]),
        ("TwilioSecret", "1 secret, read at cold starts", "", p["secret_month"]),
        ("EventStream (KMS aws/kinesis)", "data-key calls, every ~5 min per credential", "", 1.0),
    ]


def twilio_kinesis_sink(events, a):
    """Twilio's Kinesis sink into a stream of the same shape, read by the same consumers: no
    HTTP API, no ingest, no dedup table, no ingest logs or metrics, no Twilio secret."""
    p = PRICES
    lines = []
    for resource, what, figure, cost in ours(events, a):
        if resource in {"TwilioHttpApi", "IngestFunction", "DedupTable", "TwilioSecret"}:
            continue
        if resource == "DedupTable, LedgerTable":
            ledger_gb = events / 3 * 300 / GB
            resource, what, figure = "LedgerTable", "storage + PITR", f"{ledger_gb:,.1f} GB"
            cost = ledger_gb * (p["ddb_gb_month"] + p["ddb_pitr_gb_month"])
        elif resource.startswith("IngestLogGroup"):
            log_gb = (batches(events, 1) + batches(events, 5)) * 1.5 * 1024 / GB
            resource, what, figure = "consumers' log groups", "1.5 KB per batch, kept 30 days", f"{log_gb:,.1f} GB"
            cost = log_gb * p["cw_logs_gb_in"] + log_gb * a.log_days / 30 * p["cw_logs_gb_month"]
        elif resource.startswith("TwilioEvents metrics"):
            count = a.metrics - a.ingest_metrics
            what, cost = f"{count} metric × dimension sets (the consumers')", count * p["cw_metric_month"]
        elif resource.startswith("the alarms"):
            # ingest's own alarms (errors, 5xx, signatures, publish, store, latency, no events) go.
            what, cost = "15 alarm metrics (ingest's 7 gone)", 15 * p["cw_alarm_metric"]
        lines.append((resource, what, figure, cost))
    return lines


def previous_defaults(events, a):
    """The template before this change: an on-demand stream kept 7 days, ingest at 512 MB,
    X-Ray Active, every count a metric (~43) and larger EMF lines (~2 KB per invocation)."""
    p = PRICES
    old = argparse.Namespace(**{**vars(a), "ingest_mb": 512, "metrics": 43, "ingest_log_kb": 2.0})
    lines = []
    for resource, what, figure, cost in ours(events, old):
        if resource == "EventStream" and what.startswith("provisioned"):
            what, figure, cost = "on-demand: stream-hours", "", HOURS * p["kinesis_on_demand_stream_hour"]
            lines.append((resource, what, figure, cost))
            gb_in, gb_out = events * 2048 / GB, 2 * events * 1536 / GB
            lines.append(("EventStream", "on-demand: data in (2 KB a record) and out (2 consumers)",
                          f"{gb_in + gb_out:,.0f} GB",
                          gb_in * p["kinesis_on_demand_gb_in"] + gb_out * p["kinesis_on_demand_gb_out"]))
            lines.append(("EventStream", "retention 24 h → 7 days (~$0.10 per GB-month)", "",
                          gb_in * 6 / 30 * 0.10))
            continue
        if what.startswith("PUT payload units"):
            continue
        lines.append((resource, what, figure, cost))
    # Active tracing samples the first request each second and 5 % of the others, per function.
    per_s = events / SECONDS
    traces = 3 * min(events, SECONDS * (min(per_s, 1) + 0.05 * max(per_s - 1, 0)))
    lines.append(("Globals (Tracing: Active)", "X-Ray traces: 1 a second + 5 % of the rest, 3 functions",
                  f"{traces / 1e6:.1f} M", traces * p["xray_trace"]))
    return lines


def table(model, a, volumes):
    """One markdown table: a row per line of the model, a column per volume."""
    runs = [model(v, a) for v in volumes]
    head = " | ".join(f"{v / 1e6:,.0f} M" for v in volumes)
    out = [f"| resource (logical id) | what | {head} |", "|---|---|" + "---|" * len(volumes)]
    for i, (resource, what, _, _) in enumerate(runs[0]):
        cells = [f"${r[i][3]:,.2f}" + (f" ({r[i][2]})" if r[i][2] else "") for r in runs]
        out.append(f"| {resource} | {what} | " + " | ".join(cells) + " |")
    totals = " | ".join(f"**${sum(c for *_, c in r):,.2f}**" for r in runs)
    out.append(f"| **total** | | {totals} |")
    return "\n".join(out)


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
    volumes = (1e6, 100e6, 1e9)
    print("### This project, template defaults (crm-sync deployed)\n")
    print(table(ours, a, volumes))
    print("\n### Twilio's Kinesis sink into the same stream, read by the same consumers\n")
    print(table(twilio_kinesis_sink, a, volumes))
    print("\n### The previous defaults (on-demand stream kept 7 days, ingest 512 MB, X-Ray Active)\n")
    print(table(previous_defaults, a, volumes))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the committed seed inputs (fuzz/seeds/<target>/) from the Twilio samples and the
published signature vectors in tests/fixtures/twilio. Rerun only to regenerate them:

    python3 fuzz/make_seeds.py [tests/fixtures/twilio]
"""
import hashlib
import json
import os
import sys
import urllib.parse

SRC = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/twilio"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
# The secrets fuzz_targets/verify.rs is configured with.
TOKENS = ["016e51c6b36d6f3c9f0ac9056a4ad683", "4283fefc63f0cd0e873a0000c6d07ef7"]
SHARED_KEY_ID = "webhooks_sharedkey_b700f15810725166"


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def verify_input(form, signature, settings, key_bits, url, body):
    flags = (1 if form else 0) | (2 if signature is not None else 0)
    flags |= (4 if settings is not None else 0) | (key_bits << 3)
    return bytes([flags]) + b"\0".join(
        [url.encode(), (signature or "").encode(), (settings or "").encode(), body.encode()]
    )


samples = os.path.join(SRC, "samples")
events = []
for name in sorted(os.listdir(samples)):
    if not name.endswith(".json") or name.startswith("11_"):
        continue
    text = open(os.path.join(samples, name)).read()
    stem = name.split(".json")[0][:40]
    write("parse_delivery", stem, text)
    value = json.loads(text)
    for i, event in enumerate(value if isinstance(value, list) else [value]):
        event_text = json.dumps(event, separators=(",", ":"))
        events.append(event_text)
        write("parse_event", f"{stem}-{i}", event_text)

vectors = json.load(open(os.path.join(SRC, "signature-vectors.json")))["vectors"]
usable = {("auth_token", t) for t in TOKENS} | {("shared_key", SHARED_KEY_ID)}
picked = 0
for i, v in enumerate(vectors):
    keys = {(k["kind"], k.get("id") or k["secret"]) for k in v["keys"]}
    form = v["content_type"].startswith("application/x-www-form-urlencoded")
    if not (keys <= usable or form or v["name"].endswith("sig-truncated")):
        continue
    h = v["headers"]
    data = verify_input(
        form,
        h.get("X-Twilio-Signature"),
        h.get("X-Twilio-Webhooks-Signature-Settings"),
        picked % 3,
        v["url"],
        v["body"],
    )
    write("verify", v["name"], data)
    picked += 1
    if form:
        write("usage_trigger", v["name"], v["body"])
    elif v["name"].endswith("-valid"):
        write("parse_delivery", v["name"], v["body"])
# Hand-made: no signature, garbage settings, an IPv6 host with a port, userinfo.
write("verify", "unsigned-form", verify_input(True, None, None, 1, "http://[::1]:3000/x?a=1", "b=2&a=1"))
write("verify", "bad-settings", verify_input(False, "AAAA", "key=,algorithm", 2, "https://u:p@e.com:443/?bodySHA256=zz", "[]"))

# The sample Usage Trigger callback is written one parameter a line: form-encode it.
params = []
for line in open(os.path.join(samples, "10_usage_trigger_callback_form_params.txt")):
    line = line.rstrip("\n")
    if line and not line.startswith("#") and "=" in line:
        params.append(tuple(line.split("=", 1)))
write("usage_trigger", "sample-10", urllib.parse.urlencode(params))
write("usage_trigger", "minimal", "AccountSid=AC1&UsageTriggerSid=UT1&UsageCategory=sms&TriggerValue=1&CurrentValue=2")
write("parse_delivery", "mixed-good-and-bad", "[" + events[0] + ',{"id":1},"x",' + events[-1] + "]")
# Inputs that failed an assertion once (shared/tests/it/fuzz_regressions.rs): empty resource fields.
write("parse_event", "regression-empty-rate-limit-resource-key", '{"id":"x","type":"com.twilio.apiusage.a.ratelimits","data":{"resource_key":"","current_rate":1,"rate_limit":2}}')
write("parse_event", "regression-empty-error-log-sid", '{"id":"x","type":"com.twilio.error-logs.error.logged","data":{"sid":""}}')
write("parse_event", "regression-empty-usage-trigger-sid", '{"id":"x","type":"io.twilio-events.usage-trigger.fired","data":{"account_sid":"AC1","usage_trigger_sid":"","usage_category":"sms","trigger_value":1,"current_value":2}}')

#!/usr/bin/env python3
"""Benchmark of Twilio's official Python helper, the baseline for our Rust verifier.

Setup and run (the venv lives in the services cache, see infra/scripts/services.sh):

    PY="$(infra/scripts/services.sh install-bench)"   # venv with infra/bench/requirements.txt
    "$PY" infra/bench/python_reference.py --vectors VECTORS.json > python.json

Per delivery it times what a Python webhook handler does with one request:
    twilio.request_validator.RequestValidator(auth_token).validate(url, body_or_params, signature)
  plus json.loads(body) for JSON bodies (validate() checks the URL's bodySHA256 itself when it
  is given the body as a str), or the form parsing for application/x-www-form-urlencoded bodies.
Timing is timeit-style: loops per run are chosen so that one run lasts at least --min-time
seconds (default 1 s), runs are repeated --repeat times (default 5) and the best run counts.
Every case must validate as true (otherwise exit 1): the comparison is of a real, successful
validation, never of an early rejection.

Input (--vectors):
    {"cases": [{"name": "test-event",
                "url": "https://host/path?bodySHA256=<hex>",
                "body": "<raw body string>",
                "content_type": "application/json",
                "auth_token": "...",
                "signature": "<X-Twilio-Signature>"}]}
  Optional per case: "algorithm" (HMAC_SHA1 default, or HMAC_SHA256, passed to validate()),
  and "params" (an object) instead of "body" for a form request given as parameters.

Output (stdout, one JSON object):
    {"cases": [{"name": ..., "ns_per_delivery": ..., "valid": true}],
     "python": "<version>", "twilio": "<version>"}
Progress and method details go to stderr.
"""

import argparse
import json
import platform
import sys
import timeit
from importlib.metadata import version
from urllib.parse import parse_qsl, urlparse, parse_qs

from twilio.request_validator import RequestValidator

FORM = "application/x-www-form-urlencoded"


class FormParams(dict):
    """Form fields as name -> [values]; RequestValidator reads repeated fields via getlist()."""

    def getlist(self, name):
        return self[name]


def parse_form(body):
    params = FormParams()
    for name, value in parse_qsl(body, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def delivery_fn(case):
    """Returns a zero-argument function doing one delivery's work, and what it returns."""
    url = case["url"]
    signature = case["signature"]
    algorithm = case.get("algorithm")
    validator = RequestValidator(case["auth_token"])
    content_type = case.get("content_type", "application/json").split(";")[0].strip().lower()

    if "params" in case:
        params = FormParams({k: v if isinstance(v, list) else [v] for k, v in case["params"].items()})

        def run():
            return validator.validate(url, params, signature, algorithm)

    elif content_type == FORM:
        body = case["body"]

        def run():
            return validator.validate(url, parse_form(body), signature, algorithm)

    else:
        body = case["body"]
        if "bodySHA256" not in parse_qs(urlparse(url).query):
            print(f"warning: {case['name']}: JSON body but no bodySHA256 in the URL: "
                  "the body is not authenticated", file=sys.stderr)

        def run():
            # Validate first, as a handler must, then parse the authenticated body.
            if not validator.validate(url, body, signature, algorithm):
                return False
            json.loads(body)
            return True

    return run


def bench(fn, min_time, repeat):
    timer = timeit.Timer(fn)
    # autorange: smallest 1/2/5*10^k loop count lasting >= 0.2 s; scale it up to min_time,
    # with a 25 % margin so that noise does not leave a run short of it.
    loops, elapsed = timer.autorange()
    if elapsed < min_time:
        loops = max(loops, int(loops * 1.25 * min_time / max(elapsed, 1e-9)) + 1)
    runs = timer.repeat(repeat=repeat, number=loops)
    return min(runs) / loops * 1e9, loops, runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", required=True, help="JSON file with {\"cases\": [...]}")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per run (default 1.0)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per case, best counts (default 5)")
    args = ap.parse_args()

    with open(args.vectors, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    if not cases:
        sys.exit(f"error: no cases in {args.vectors}")

    results = []
    for case in cases:
        name = case.get("name", "?")
        fn = delivery_fn(case)
        valid = bool(fn())
        if not valid:
            sys.exit(f"error: case {name!r} does not validate with twilio's RequestValidator; "
                     "refusing to time a failed validation")
        ns, loops, runs = bench(fn, args.min_time, args.repeat)
        print(f"{name}: {ns:,.0f} ns/delivery (best of {args.repeat} runs of {loops} loops; "
              f"runs {', '.join(f'{r:.2f}' for r in runs)} s)", file=sys.stderr)
        results.append({"name": name, "ns_per_delivery": round(ns, 1), "valid": valid})

    print(json.dumps({
        "cases": results,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "twilio": version("twilio"),
    }))


if __name__ == "__main__":
    main()

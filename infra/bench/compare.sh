#!/usr/bin/env bash
# Verify + parse per delivery, side by side on the same bytes (infra/bench/cases.json):
#   ours:   criterion bench shared/benches/verify_parse.rs (Verifier::verify + parse_delivery)
#   theirs: Twilio's official Python helper, RequestValidator.validate + json.loads
#           (infra/bench/python_reference.py, twilio pinned in infra/bench/requirements.txt)
# Prints one line per case with both times and the ratio. Takes about a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

py="$(bash infra/scripts/services.sh install-bench)"
echo "==> Python reference (twilio's RequestValidator + json.loads)" >&2
python_json="$("$py" infra/bench/python_reference.py --vectors infra/bench/cases.json)"

echo "==> Rust (criterion, release)" >&2
cargo bench -q -p twilio-events-shared --bench verify_parse -- --warm-up-time 2 --measurement-time 5 \
    '^verify_parse/[a-z0-9-]+$' >&2

PYTHON_JSON="$python_json" python3 - <<'PY'
import json, os
py = json.loads(os.environ["PYTHON_JSON"])
print(f"{'delivery':<18} {'rust ns':>10} {'python ns':>10} {'ratio':>7}   ({py['python']}, twilio {py['twilio']})")
for case in py["cases"]:
    with open(f"target/criterion/verify_parse/{case['name']}/new/estimates.json") as f:
        rust = json.load(f)["mean"]["point_estimate"]
    print(f"{case['name']:<18} {rust:>10.0f} {case['ns_per_delivery']:>10.0f} {case['ns_per_delivery'] / rust:>6.1f}x")
PY

#!/usr/bin/env bash
# Fails when a tracked file names something outside the repository: a user's clone has only the
# repository, so every fixture, document and path the project uses must live inside it.
#   - absolute paths of a development machine (/work/, /home/…, /Users/…) in sources and docs;
#   - the reference notes the project was written from (they are restated in docs/twilio.md and
#     docs/testing.md, and their data copied to tests/fixtures/ with its provenance);
#   - relative links in Markdown files, and Cargo path dependencies, that resolve outside the
#     repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

status=0
if git grep -nIE '(^|[^A-Za-z0-9_.])/(work|home/[a-z]+|Users/[A-Za-z]+)/|FACTS[.]md|aws-local/README' \
    -- . ':!Cargo.lock' ':!infra/scripts/check-self-contained.sh'; then
    echo "check-self-contained: the lines above name a path outside the repository" >&2
    status=1
fi

python3 - <<'PY' || status=1
import os, re, subprocess, sys
root = os.path.realpath(".")
files = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
bad = []
link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
dep = re.compile(r'path\s*=\s*"([^"]+)"')
for f in files:
    if f.endswith(".md"):
        pattern = link
    elif f.endswith("Cargo.toml"):
        pattern = dep
    else:
        continue
    text = open(f, encoding="utf-8", errors="replace").read()
    for target in pattern.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL
        resolved = os.path.realpath(os.path.join(os.path.dirname(f), target))
        if not (resolved == root or resolved.startswith(root + os.sep)):
            bad.append(f"{f}: {target} resolves outside the repository")
        elif not os.path.exists(resolved):
            bad.append(f"{f}: {target} does not exist")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
exit "$status"

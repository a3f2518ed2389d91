#!/usr/bin/env bash
# Builds the Lambda functions the way `sam deploy` ships them: `sam build` with
# BuildMethod rust-cargolambda (template.yaml), cargo-lambda from PyPI (it brings Zig, so the
# arm64 cross-compile needs no Docker and no download at build time).
#
# Usage:  infra/scripts/sam-build.sh [extra `sam build` arguments]
# Output: .aws-sam/build/{Ingest,CrmSync,QuotaAlert,Reconcile,KafkaForward}Function/bootstrap (aarch64)
#         and .aws-sam/build/template.yaml, ready for `sam deploy`.
#
# Tools come from the venv of `infra/scripts/services.sh install-tools` (cfn-lint, AWS SAM CLI,
# cargo-lambda). Not part of infra/scripts/test.sh: a cold release build of the
# binaries takes several minutes on 2 cores (docs/deploy.md has the measured time).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

log() { printf '[sam-build %4ds] %s\n' "$SECONDS" "$*" >&2; }

log "tools: services.sh install-tools"
tools_bin="$(bash infra/scripts/services.sh install-tools)"

# The arm64 standard library (cargo-lambda would otherwise add it itself, through rustup).
if command -v rustup >/dev/null 2>&1; then
    rustup target add aarch64-unknown-linux-gnu >&2
fi

# sam finds `cargo` and `cargo-lambda` (and cargo-lambda finds zig) on PATH.
export PATH="$tools_bin:$PATH"
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_UPDATE_CHECK=1
export AWS_REGION="${AWS_REGION:-us-east-1}"

# kafka-forward's librdkafka is built by its own configure script, which compiles with $CC and
# $CXX and archives with $AR: these wrappers hand it cargo-lambda's cross compilers and archiver
# for the target (CC_<target>, CXX_<target>, AR_<target>), and the system's for anything built
# for this machine.
export CC="$PWD/infra/scripts/cross/cc" CXX="$PWD/infra/scripts/cross/c++" AR="$PWD/infra/scripts/cross/ar"

log "sam build (release, arm64)"
sam build --template template.yaml "$@"

for fn in IngestFunction CrmSyncFunction QuotaAlertFunction ReconcileFunction KafkaForwardFunction; do
    bin=".aws-sam/build/$fn/bootstrap"
    [[ -x $bin ]] || {
        echo "[sam-build] error: $bin was not built" >&2
        exit 1
    }
    log "$bin: $(file -b "$bin" | cut -d, -f1-2), $(du -h "$bin" | cut -f1)"
done
log "done: sam deploy --guided (docs/deploy.md)"

# Sourced by the benchmark scripts that talk to AWS: starts moto over HTTP/1.1 keep-alive
# (infra/bench/moto_keepalive.py, as AWS endpoints answer) on PORT, logging to LOG, waits until it
# listens, sets `moto_pid` (the caller's cleanup kills it) and points the AWS SDKs at it.
#   start_keepalive_moto PORT LOG
start_keepalive_moto() {
    local port="$1" log="$2"
    local python="${HOME}/.cache/twilio-events/moto-5.2.5/bin/python"
    "$python" infra/bench/moto_keepalive.py --port "$port" >"$log" 2>&1 &
    moto_pid=$!
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    unset AWS_PROFILE
}

#!/usr/bin/env bash
# A local demo of one campaign: the Telegram sandbox plays Telegram, 1,000
# users are imported (half ru, half en), a campaign goes to the ru half,
# and the read model shows it completed. Needs Postgres on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/test-services.sh)"
# cargo's own progress: the first build on a fresh machine takes minutes.
echo "building courier's services" >&2
cargo build --bins

export NATS_URL="$COURIER_TEST_NATS_URL"
export COURIER_NATS_PREFIX="demo$(date +%s)"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/courier_demo"
export TELEGRAM_BOT_TOKEN="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
export TELEGRAM_API_URL="http://127.0.0.1:8081"
export SENDER_RATE_LIMIT=30
export RUST_LOG="${RUST_LOG:-warn}"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS courier_demo" -c "CREATE DATABASE courier_demo"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
SANDBOX_ADDR=127.0.0.1:8081 target/debug/telegram-sandbox & pids+=($!)
METRICS_ADDR=127.0.0.1:9101 target/debug/courier-projector & pids+=($!)
METRICS_ADDR=127.0.0.1:9102 target/debug/courier-loader & pids+=($!)
METRICS_ADDR=127.0.0.1:9103 target/debug/courier-sender & pids+=($!)
METRICS_ADDR=127.0.0.1:9104 target/debug/courier-sender & pids+=($!)

users="$(mktemp --suffix=.csv)"
{ echo "user_id,language"; for i in $(seq 1 1000); do [ $((i % 2)) = 1 ] && echo "$i,ru" || echo "$i,en"; done; } > "$users"
target/debug/courierctl users import "$users"
until [ "$(psql -h 127.0.0.1 -U postgres -d courier_demo -Atc 'SELECT count(*) FROM users' 2>/dev/null)" = 1000 ]; do sleep 0.2; done
campaign="$(target/debug/courierctl campaign start --audience ru --text 'Hello from courier')"
echo "campaign $campaign started: 500 recipients at ${SENDER_RATE_LIMIT}/s"
query="SELECT status, audience_size, delivered, not_alive, failed FROM campaigns WHERE campaign_id = '$campaign'"
while :; do
  row="$(psql -h 127.0.0.1 -U postgres -d courier_demo -Atc "$query")"
  echo "status|audience|delivered|not_alive|failed = $row"
  [[ "$row" == completed* ]] && break
  sleep 2
done
curl -s 127.0.0.1:8081/_sandbox/stats; echo
echo "sender metrics:"; curl -s 127.0.0.1:9103/metrics | grep '^courier_' || true

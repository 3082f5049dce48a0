# courier's commands. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Build every crate.
build:
    cargo build --workspace

# Run every test (unit and integration) against real NATS and Postgres.
# The service binaries are built first: crash tests run them as processes.
test:
    cargo build --workspace --bins
    eval "$(scripts/test-services.sh)" && cargo nextest run --workspace --no-fail-fast

# Only the fault tests: crashes, NATS and Postgres outages (plus the
# 100,000-recipient load with faults, which `just test` leaves out).
chaos:
    cargo build --workspace --bins
    eval "$(scripts/test-services.sh)" && cargo nextest run --workspace --no-fail-fast --run-ignored all -E 'test(/chaos|kill/)' 

# What CI checks besides the tests: formatting, clippy with the workspace's
# lints (warnings denied), unused dependencies (cargo-machete), and the docs
# (broken links denied).
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo machete
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

# A local demo: sandbox Telegram, 1,000 imported users, one campaign to ru.
demo:
    scripts/demo.sh

# Options after the recipe name go to courier-bench (`just bench --help`).
#
# Benchmark courier on this machine (release binaries, real NATS, Postgres, sandbox) into target/bench-report.md.
bench *ARGS:
    cargo build --release --bins
    eval "$(scripts/test-services.sh)" && target/release/courier-bench {{ARGS}}

# Only the sender benchmarks: limits off, and rate adherence.
bench-sender *ARGS:
    cargo build --release --bins
    eval "$(scripts/test-services.sh)" && target/release/courier-bench --only sender,rate {{ARGS}}

# The compose stack (deploy/): 3-node NATS, Postgres, the services, the sandbox, Grafana.
up:
    docker compose -f deploy/docker-compose.yml up -d --build

# Stops the compose stack; its volumes stay (`down -v` drops them).
down:
    docker compose -f deploy/docker-compose.yml down

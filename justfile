# courier's commands. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Build every crate.
build:
    cargo build --workspace

# Run every test (unit and integration) against real NATS and Postgres.
test:
    eval "$(scripts/test-services.sh)" && cargo nextest run --workspace --no-fail-fast

# Lints and formatting, as CI checks them.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# A local demo: sandbox Telegram, 1,000 imported users, one campaign to ru.
demo:
    scripts/demo.sh

//! The rate budget's reservations against a real NATS KV schedule: a
//! replica takes a slot for each of its sends waiting, not ~50 ms of the
//! token's schedule (docs/decisions/0021).

use courier_core::send_limits::Lane;
use courier_sender::budget::Budget;
use courier_sender::{kv_number, rate};
use courier_testing::TestEnv;

#[tokio::test]
async fn one_send_waiting_reserves_a_few_slots_not_fifty_milliseconds() {
    // With limits off 50 ms of the schedule is 5,000 slots.
    const RATE: f64 = 100_000.0;
    let env = TestEnv::new().await;
    env.jetstream().await;
    let js = async_nats::jetstream::new(env.nats_client().await);
    let rates = js
        .get_key_value(env.topology().rate_bucket())
        .await
        .unwrap();
    let budget = Budget::new(rates.clone(), "42", Lane::Paid, RATE);

    let slot = budget.acquire().await.unwrap();

    let key = format!("42.{}", Lane::Paid.as_str());
    let next = kv_number::read(&rates, &key)
        .await
        .unwrap()
        .and_then(|read| read.number)
        .expect("the reservation is in the schedule");
    let reserved = (next - slot) / rate::interval_us(RATE);
    assert_eq!(reserved, u64::from(rate::chunk(RATE, 1)));
    assert!(reserved < u64::from(rate::chunk(RATE, usize::MAX)));
}

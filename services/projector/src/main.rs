// One thread, like the sender: the projector applies one batch at a time,
// and a second worker thread only added wake-ups between threads (about a
// third of its CPU per outcome during a live campaign; docs/performance-history.md, *Cost per
// message*).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    courier_core::service::main(
        "courier-projector",
        "Applies courier's event and outcome streams to the Postgres read model. \
         Run one or more; one applies, the others stand by.",
        courier_projector::run,
    )
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    courier_core::service::main(
        "courier-projector",
        "Applies courier's event and outcome streams to the Postgres read model. \
         Run one or more; one applies, the others stand by.",
        courier_projector::run,
    )
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    courier_core::service::main(
        "courier-loader",
        "Turns each started campaign into one SendMessage work item per recipient. \
         Run one or more; each campaign is fanned out by one.",
        courier_loader::run,
    )
    .await
}

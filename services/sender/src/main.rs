#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    courier_core::service::main(
        "courier-sender",
        "Delivers SendMessage work items through the Telegram Bot API. \
         Run as many replicas as you like; they share one consumer and one rate budget.",
        courier_sender::run,
    )
    .await
}

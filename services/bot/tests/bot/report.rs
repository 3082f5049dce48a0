//! A completed campaign's report: the text, then its picture as a photo,
//! and on request one CSV row per recipient as a document.

use courier_core::proto::v1::Language;
use courier_testing::wait_until;
use serde_json::{Value, json};
use telegram_sandbox::ChatState;

use crate::broadcast::{start, to_summary};
use crate::{DEADLINE, Harness, OWNER};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completed_campaign_comes_with_its_picture_and_a_csv_on_request() {
    let harness = Harness::start(1000.0).await;
    let users = [7_101, 7_102, 7_103];
    harness
        .users(&users.map(|user| (user, Language::En, true)))
        .await;
    harness.sandbox.set_chat_state(7_103, ChatState::Blocked);
    let summary = to_summary(&harness, OWNER, "en", json!({ "text": "Report me" }), None).await;
    let after = summary["message_id"].as_i64().unwrap();
    let id = start(&harness, OWNER, &summary).await;

    let picture = harness
        .wait_for_all(OWNER, after, &[&format!("id {id}"), "📊 How"])
        .await;
    let largest = picture["photo"].as_array().and_then(|sizes| sizes.last());
    let file_id = largest.and_then(|size| size["file_id"].as_str()).unwrap();
    let png = harness
        .sandbox
        .upload(file_id)
        .expect("the uploaded picture");
    let side = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!((side(16), side(20)), (1200, 760));

    harness.press(OWNER, &picture, "📄 Every recipient");
    let file_name = format!("campaign-{id}.csv");
    let document: Value = wait_until("the CSV", DEADLINE, || async {
        harness
            .messages(OWNER)
            .into_iter()
            .find(|m| m["document"]["file_name"] == file_name.as_str())
    })
    .await;
    let csv = harness
        .sandbox
        .upload(document["document"]["file_id"].as_str().unwrap())
        .expect("the uploaded CSV");
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    let rows: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let user = fields.next().unwrap_or_default().to_owned();
            (user, fields.next().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(csv.lines().next(), Some(courier_core::report::CSV_HEADER));
    assert_eq!(
        rows,
        [
            ("7101".to_owned(), "delivered".to_owned()),
            ("7102".into(), "delivered".into()),
            ("7103".into(), "not_alive".into()),
        ]
    );
    harness.stop().await;
}

//! A `202` from `POST /v1/publish` means the batch is sequenced and in every
//! shard's history: a subscriber that starts after the `202` replays all of
//! it (read-your-writes), and the body says which `seq`s were given.

use crate::events_util::*;
use crate::util::*;
use serde_json::json;

const ROUNDS: i64 = 200;
const BATCH: i64 = 3;

#[test]
fn a_202_means_a_new_subscriber_replays_the_whole_batch() {
    // Two shards: the publish lands on one, the subscriber may be on either.
    let s = start_sim(5, 1000, &["--shards", "2"], None);
    for round in 0..ROUNDS {
        let first = round * BATCH + 1;
        let last = first + BATCH - 1;
        let batch: Vec<_> = (first..=last)
            .map(|i| alert("t1", &format!("a{i}")))
            .collect();
        let body = publish(&s, &json!(batch));
        assert_eq!(body["seq"], json!([first, last]), "{body}");
        assert_eq!(
            body["streams"],
            json!([{"channel": "alerts", "tenant": "t1", "seq": [first, last]}]),
            "{body}"
        );

        let mut ws = connect(&s, &trader());
        let ack = subscribe_op(
            &mut ws,
            json!({"op":"subscribe","id":1,"channel":"alerts","since": first - 1}),
        );
        assert_eq!(
            (&ack["recovered"], &ack["last_seq"]),
            (&json!(true), &json!(last)),
            "round {round}: {ack}"
        );
        let (_, replay) = ws.recv_until(after_ms(10_000), |v| {
            v["type"] == "alert" && v["seq"] == last
        });
        let mut seqs = alert_seqs(&replay);
        seqs.push(last);
        assert_eq!(seqs, (first..=last).collect::<Vec<_>>(), "round {round}");
    }
}

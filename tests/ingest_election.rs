//! An ingester started while its JetStream cluster has lost its quorum (two of three nodes
//! down) waits for the nodes and the election instead of exiting: JetStream answers
//! "temporarily unavailable" meanwhile, which `Ingester::connect` tries again for up to 30 s.
//! Starts its own 3-node cluster (`nats-server` on PATH, or NATS_SERVER).

use std::time::Duration;

use testkit::nats::Cluster;
use tower_activity::ingest::{IngestConfig, Ingester};
use tower_activity::sink::StreamConfig;

#[tokio::test]
async fn an_ingester_started_without_a_quorum_connects_once_the_nodes_return() {
    let mut cluster = Cluster::start();
    let stream = StreamConfig::default().with_replicas(3);
    let config = IngestConfig::default().with_stream(stream);
    // The stream (and a first consumer), made once the new cluster has a leader.
    let mut made = None;
    for _ in 0..3 {
        match Ingester::connect(&cluster.urls(), config.clone()).await {
            Ok(ingester) => {
                made = Some(ingester);
                break;
            }
            Err(e) => eprintln!("the cluster is not ready yet: {e}"),
        }
    }
    drop(made.expect("the 3-node cluster took the stream and its consumer"));

    cluster.kill(1);
    cluster.kill(2);
    // A consumer of another name: creating it needs a quorum's consent, which one node alone
    // cannot give (looking up an existing one, that node may still answer for a while).
    let url = cluster.url(0);
    let connecting = tokio::spawn({
        let config = config.clone().with_durable("ingest-after-the-election");
        async move { Ingester::connect(&url, config).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    if connecting.is_finished() {
        let answer = connecting.await.unwrap();
        panic!(
            "the ingester did not wait for the cluster: {:?}",
            answer.map(|_| "connected without a quorum")
        );
    }

    cluster.restart(1);
    cluster.restart(2);
    let answer = tokio::time::timeout(Duration::from_secs(40), connecting)
        .await
        .expect("Ingester::connect returns within its 30 s of patience")
        .unwrap();
    let ingester = answer.expect("connected once the cluster had its quorum back");
    let lag = ingester.lag().await.expect("the consumer answers");
    assert_eq!(lag.pending, 0, "{lag:?}");
}

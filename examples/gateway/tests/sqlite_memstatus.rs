//! `storage::sqlite_memory_statistics_off`, in a test binary of its own: SQLite takes its
//! process-wide configuration once, before its first connection.

use tower_activity::sink::SqliteSink;
use tower_activity::{ActivityRecord, ActivitySink, RecordKind};

#[tokio::test]
async fn sqlite_counts_no_memory_once_its_statistics_are_off() {
    assert_eq!(gateway::storage::sqlite_memory_statistics_off(), Ok(()));
    let sink = SqliteSink::in_memory().await.unwrap();
    let records: Vec<ActivityRecord> = (0..100)
        .map(|_| ActivityRecord::new(RecordKind::Request))
        .collect();
    sink.write(&records).await.unwrap();
    // SQLite allocated (a connection, its cache, the statements) without counting any of it.
    // SAFETY: a read of SQLite's counter, which it guards itself.
    assert_eq!(unsafe { libsqlite3_sys::sqlite3_memory_used() }, 0);
    // Too late once SQLite has started: refused, nothing changed.
    assert_eq!(
        gateway::storage::sqlite_memory_statistics_off(),
        Err(libsqlite3_sys::SQLITE_MISUSE)
    );
}

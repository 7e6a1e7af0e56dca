//! The public methods both SQL sinks have and do not do differently, written once: each sink
//! holds a [`SqlStore`](super::SqlStore) in `self.store` and gets these by
//! `sql_sink_methods!(SinkName, PoolType)`.

/// Generates `migrate` (documented by the caller: each backend locks differently), `pool`,
/// `close`, `names`, `delete_older_than`, `delete_before` and the `ActivityQuery` impl of a
/// SQL sink from its `store` field.
macro_rules! sql_sink_methods {
    ($sink:ident, $pool:ty, $(#[$migrate_doc:meta])*) => {
        impl $sink {
            $(#[$migrate_doc])*
            pub async fn migrate(&self) -> Result<(), $crate::sink::StorageError> {
                self.store.migrate().await
            }

            /// The connection pool (for your own queries on the same database).
            pub fn pool(&self) -> &$pool {
                self.store.pool()
            }

            /// Closes the connection pool once the writer is done with it: when this returns,
            /// every connection is closed (SQLite has folded its write-ahead log back into the
            /// file). Queries and writes fail afterwards.
            pub async fn close(&self) {
                self.store.close().await
            }

            /// The table names.
            pub fn names(&self) -> &$crate::sink::TableNames {
                self.store.names()
            }

            /// Retention: deletes the records of every UTC day before the last `days` (today
            /// and the `days − 1` days before are kept), with their rollup rows, in one
            /// transaction; returns how many records were deleted.
            ///
            /// Whole days go, so the rollup keeps matching the records: the stats of any range
            /// within the kept days do not change, and older days read as empty. `days` must be
            /// at least 1.
            ///
            /// ```no_run
            #[doc = concat!("# async fn f(sink: tower_activity::sink::", stringify!($sink), ") -> Result<(), tower_activity::StorageError> {")]
            /// let deleted = sink.delete_older_than(90).await?; // e.g. nightly
            /// # let _ = deleted; Ok(()) }
            /// ```
            pub async fn delete_older_than(
                &self,
                days: u32,
            ) -> Result<u64, $crate::sink::StorageError> {
                self.store.delete_older_than(days).await
            }

            /// Deletes the records of every UTC day before `day`, with their rollup rows, in
            /// one transaction; returns how many records were deleted.
            pub async fn delete_before(
                &self,
                day: chrono::NaiveDate,
            ) -> Result<u64, $crate::sink::StorageError> {
                self.store.delete_before(day).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::query::ActivityQuery for $sink {
            async fn stats(
                &self,
                user_id: &str,
                query: &$crate::query::StatsQuery,
            ) -> Result<$crate::query::Stats, $crate::query::QueryError> {
                self.store.stats(user_id, query).await
            }

            async fn log(
                &self,
                user_id: &str,
                query: &$crate::query::LogQuery,
            ) -> Result<$crate::query::LogPage, $crate::query::QueryError> {
                self.store.log(user_id, query).await
            }
        }
    };
}

pub(crate) use sql_sink_methods;

//! The embedded migrations: SQL files under `migrations/{backend}/` with `{log}`, `{daily}`,
//! `{prefix}` and `{schema}` (`"name".` or nothing) placeholders, rendered for one
//! [`TableNames`].
//!
//! Why not `sqlx::migrate::Migrator`: its migrations are fixed SQL, and ours name tables that
//! depend on the configured schema and prefix; its history table is `_sqlx_migrations`, shared
//! with the application's own migrations. One runner serves both backends
//! ([`SqlStore::migrate`](super::SqlStore::migrate)): the backend's lock, the applied
//! versions, the missing ones, all in one transaction.

use super::TableNames;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Applied in increasing order, recorded in the migration history table.
    pub(crate) version: i64,
    /// What it does (recorded beside the version).
    pub(crate) description: &'static str,
    /// The SQL template.
    pub(crate) sql: &'static str,
}

/// The template with the table names filled in (names are validated identifiers).
pub(crate) fn render(sql: &str, names: &TableNames) -> String {
    sql.replace("{log}", &names.log_table())
        .replace("{daily}", &names.daily_table())
        .replace("{migrations}", &names.migrations_table())
        .replace("{prefix}", names.prefix())
        .replace(
            "{schema}",
            &names
                .schema()
                .map(|s| format!("\"{s}\"."))
                .unwrap_or_default(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_get_the_configured_names() {
        let names = TableNames::new().with_prefix("t_").unwrap();
        assert_eq!(
            render("CREATE INDEX {prefix}x ON {log}; {daily}", &names),
            "CREATE INDEX t_x ON t_activity_log; t_activity_daily"
        );
        let names = names.with_schema("s").unwrap();
        assert_eq!(render("{schema}{prefix}x", &names), "\"s\".t_x");
    }
}

//! [`TableNames`]: where a SQL sink keeps its tables, validated once.

use super::StorageError;

/// The longest table prefix: the longest name built from it (an index name) must stay within
/// PostgreSQL's 63-byte identifier limit.
const MAX_PREFIX: usize = 30;
/// PostgreSQL's identifier limit.
const MAX_SCHEMA: usize = 63;

/// The schema and table-name prefix of a SQL sink's tables.
///
/// A sink keeps three tables: `{prefix}activity_log` (one row per record),
/// `{prefix}activity_daily` (the daily rollup the stats read) and
/// `{prefix}activity_migrations` (its own migration history, never the application's
/// `_sqlx_migrations`). Two sinks with different prefixes (or schemas) share a database
/// without seeing each other's rows.
///
/// Names are written into SQL, so they are validated: lowercase ASCII letters, digits and
/// `_`, not starting with a digit; a prefix of at most 30 characters, a schema of at most 63.
/// SQLite has no schemas: [`SqliteSink`](crate::sink::SqliteSink) refuses one.
///
/// ```
/// use tower_activity::sink::TableNames;
///
/// let names = TableNames::new().with_prefix("tenant_a_")?.with_schema("activity")?;
/// assert_eq!(names.log_table(), r#""activity".tenant_a_activity_log"#);
///
/// let err = TableNames::new().with_prefix("x; DROP TABLE users").unwrap_err();
/// assert!(err.to_string().contains("x; DROP TABLE users"));
/// # Ok::<(), tower_activity::StorageError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableNames {
    schema: Option<String>,
    prefix: String,
}

impl TableNames {
    /// No prefix, the connection's default schema (`public` in PostgreSQL): `activity_log`,
    /// `activity_daily`, `activity_migrations`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prefixes every table and index name (`"tenant_a_"` → `tenant_a_activity_log`).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, StorageError> {
        if !prefix.is_empty() {
            check("table prefix", prefix, MAX_PREFIX)?;
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// Puts the tables in `schema` (PostgreSQL only), created if missing.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, StorageError> {
        check("schema", schema, MAX_SCHEMA)?;
        self.schema = Some(schema.to_owned());
        Ok(self)
    }

    /// The schema, if one was set.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table-name prefix (may be empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The qualified name of the table of records (`[schema.]{prefix}activity_log`).
    pub fn log_table(&self) -> String {
        self.qualified("activity_log")
    }

    /// The qualified name of the daily rollup table.
    pub fn daily_table(&self) -> String {
        self.qualified("activity_daily")
    }

    /// The qualified name of the migration history table.
    pub fn migrations_table(&self) -> String {
        self.qualified("activity_migrations")
    }

    pub(crate) fn qualified(&self, table: &str) -> String {
        match &self.schema {
            // Quoted so that a schema named like a keyword (`user`) works too.
            Some(schema) => format!("\"{schema}\".{}{table}", self.prefix),
            None => format!("{}{table}", self.prefix),
        }
    }
}

fn check(what: &'static str, name: &str, max: usize) -> Result<(), StorageError> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > max {
        if max == MAX_PREFIX {
            "must be at most 30 characters"
        } else {
            "must be at most 63 characters"
        }
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        "must not start with a digit"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        "may only contain lowercase ASCII letters, digits and `_`"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_with_the_name_and_the_rule() {
        for (prefix, rule) in [
            ("Tenant", "lowercase"),
            ("1st_", "digit"),
            ("a-b", "lowercase"),
            ("a\"b", "lowercase"),
            (&"x".repeat(31), "30"),
        ] {
            let err = TableNames::new().with_prefix(prefix).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("table prefix") && text.contains(rule),
                "{text}"
            );
            assert!(text.contains(&format!("{prefix:?}")), "{text}");
        }
        let err = TableNames::new().with_schema("").unwrap_err();
        assert!(err.to_string().contains("schema"), "{err}");
    }

    #[test]
    fn names_are_prefixed_and_qualified() {
        let names = TableNames::new();
        assert_eq!(names.log_table(), "activity_log");
        let names = names.with_prefix("t1_").unwrap().with_schema("s").unwrap();
        assert_eq!(names.daily_table(), r#""s".t1_activity_daily"#);
        assert_eq!(names.migrations_table(), r#""s".t1_activity_migrations"#);
        assert_eq!(names.prefix(), "t1_");
        assert_eq!(names.schema(), Some("s"));
    }
}

//! Metadata in SQLite or Postgres.

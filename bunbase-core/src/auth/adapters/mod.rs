//! Identity stores: `memory`, and SQL (`sqlite` for the all-in-one,
//! `postgres` beyond one machine). Each implements both
//! [`super::AuthStore`] and [`crate::platform::ProjectStore`].

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;

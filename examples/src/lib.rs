//! Examples live beside this crate's manifest; run them with `cargo run -p bunbase-examples --example NAME`.

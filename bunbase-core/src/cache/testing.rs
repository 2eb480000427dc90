//! The conformance suite every [`Cache`] adapter must pass.

use std::time::Duration;

use super::Cache;
use crate::id::random_hex;

pub async fn run(cache: &dyn Cache) {
    let key = format!("t{}", random_hex(6));
    assert_eq!(
        cache.get(&key).await.unwrap(),
        None,
        "missing keys are misses"
    );
    cache
        .set(&key, b"value", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap().as_deref(),
        Some(&b"value"[..])
    );
    cache
        .set(&key, b"\x00binary\xff", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap().as_deref(),
        Some(&b"\x00binary\xff"[..])
    );
    cache.delete(&key).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.delete(&key).await.unwrap();
    let short = format!("t{}", random_hex(6));
    cache
        .set(&short, b"x", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(cache.get(&short).await.unwrap(), None, "entries expire");
}

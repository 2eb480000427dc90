//! Operations artefacts: the compose files, the Prometheus config and the
//! metrics text, checked by the real tools (Compose v2, promtool).

use std::io::Write;
use std::process::{Command, Stdio};

use bunbase_tests::harness::{self, ALPHA, Options};
use bunbase_tests::servers::find_binary;
use serde_json::json;

use crate::support::{http, publish};

#[test]
fn compose_files_validate() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../compose/check.sh");
    let output = Command::new("bash")
        .arg(script)
        .output()
        .expect("run compose/check.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "compose/check.sh failed:\n{text}");
    assert!(text.contains(", 0 failed"), "{text}");
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let promtool =
        find_binary("promtool").expect("promtool (Debian prometheus) is installed by .ci/run");
    let server = harness::start(Options::default()).await;
    let url = server.url();
    publish(&url, ALPHA, "alpha", "m", json!(1)).await;
    let _ = http().get(format!("{url}/nope")).send().await.unwrap();
    let text = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

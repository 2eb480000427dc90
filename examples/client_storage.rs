//! The typed client against a running server's `/storage`: start the
//! all-in-one (`cargo run --bin bunbase`), then
//!
//!   BUNBASE_TOKEN=<the printed dev token> cargo run -p bunbase-examples --example client_storage
//!
//! It makes a bucket, uploads a file through `put_stream`, lists it as a
//! folder, reads a range, signs a download link that needs no credential,
//! issues an S3 credential (for `aws s3` or boto3), and cleans up.

use bunbase_client::{BucketSettings, Client, PutOptions};
use futures_util::TryStreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BUNBASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("BUNBASE_TOKEN")
        .map_err(|_| anyhow::anyhow!("set BUNBASE_TOKEN to the dev token bunbase printed"))?;
    let client = Client::new(&url)?.with_token(token);
    let files = client.storage();

    let settings = BucketSettings {
        allowed_content_types: vec!["text/*".into()],
        ..Default::default()
    };
    files
        .create_bucket("demo", "example-notes", &settings)
        .await?;

    // put_stream takes any stream of chunks of a known total length (a
    // file read in pieces, a network body); here one chunk.
    let path = std::path::Path::new(file!());
    let length = tokio::fs::metadata(path).await?.len();
    let file = tokio::fs::read(path).await?;
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes_of(file))]);
    let text = PutOptions {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    let stored = files
        .put_stream(
            "demo",
            "example-notes",
            "src/client_storage.rs",
            length,
            body,
            &text,
        )
        .await?;
    println!(
        "stored {} ({} bytes, etag {})",
        stored.key, stored.size, stored.etag
    );

    let page = files
        .list("demo", "example-notes", "", Some("/"), None, None)
        .await?;
    println!("folders: {:?}", page.prefixes);

    let head = files
        .get(
            "demo",
            "example-notes",
            "src/client_storage.rs",
            Some("bytes=0-74"),
        )
        .await?;
    let first: Vec<bytes::Bytes> = head.body.try_collect().await?;
    println!(
        "first line: {}",
        String::from_utf8_lossy(&first.concat()).trim()
    );

    let link = files
        .sign(
            "demo",
            "example-notes",
            &serde_json::json!({"key": "src/client_storage.rs", "expires_in": 300}),
        )
        .await?;
    println!("anyone can download it for 5 minutes: {}", link.url);

    let s3 = files.create_s3_credential("demo").await?;
    println!(
        "S3: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {url}/storage/s3 s3 ls s3://example-notes --recursive",
        s3.access_key_id, s3.secret_access_key
    );
    files
        .revoke_s3_credential("demo", &s3.access_key_id)
        .await?;

    println!("usage: {:?}", files.usage("demo").await?);
    files.delete_bucket("demo", "example-notes", true).await?;
    Ok(())
}

fn bytes_of(data: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(data)
}

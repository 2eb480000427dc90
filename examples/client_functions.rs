//! The typed client against a running server's Functions: start the
//! all-in-one (`cargo run --bin bunbase`), then
//!
//!   BUNBASE_TOKEN=<the printed dev token> cargo run -p bunbase-examples --example client_functions
//!
//! It deploys a TypeScript function that counts its calls in KV, calls it
//! twice, deploys a second version, rolls back to the first, reads the
//! invocation log, and deletes the function.

use bunbase_client::{Client, Deployment, SourceFile};

const HANDLER: &str = r#"
interface Reply { greeting: string; calls: number; version: number }

export default async (request: Request, ctx): Promise<Response> => {
  const name = new URL(request.url).searchParams.get("name") ?? "world";
  const calls: number = await ctx.bunbase.kv.incr("example:calls");
  console.log(`called by ${ctx.auth?.kind ?? "nobody"}`);
  const reply: Reply = { greeting: `${ctx.env.GREETING}, ${name}`, calls, version: ctx.version };
  return Response.json(reply);
};
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BUNBASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("BUNBASE_TOKEN")
        .map_err(|_| anyhow::anyhow!("set BUNBASE_TOKEN to the dev token bunbase printed"))?;
    let client = Client::new(&url)?.with_token(token);
    let functions = client.functions();

    let mut deployment = Deployment {
        files: vec![SourceFile {
            path: "index.ts".into(),
            code: HANDLER.into(),
        }],
        ..Default::default()
    };
    deployment.env.insert("GREETING".into(), "hello".into());
    let first = functions
        .deploy("demo", "example-greeter", &deployment)
        .await?;
    println!("deployed version {}", first.number);

    for _ in 0..2 {
        let answer = functions
            .invoke(
                "demo",
                "example-greeter",
                reqwest::Method::GET,
                "?name=rust",
                "",
            )
            .await?;
        println!("{} {}", answer.status, answer.text());
    }

    deployment.env.insert("GREETING".into(), "hi".into());
    let second = functions
        .deploy("demo", "example-greeter", &deployment)
        .await?;
    let answer = functions
        .invoke("demo", "example-greeter", reqwest::Method::GET, "", "")
        .await?;
    println!("version {}: {}", second.number, answer.text());

    functions
        .rollback("demo", "example-greeter", first.number)
        .await?;
    let answer = functions
        .invoke("demo", "example-greeter", reqwest::Method::GET, "", "")
        .await?;
    println!("rolled back: {}", answer.text());

    let page = functions
        .logs("demo", Some("example-greeter"), None, 10)
        .await?;
    for record in &page.invocations {
        println!(
            "  {} v{} {} {} µs{}",
            record.id,
            record.version,
            record.outcome.as_str(),
            record.duration_us,
            if record.cold { " (cold)" } else { "" }
        );
    }
    functions.delete("demo", "example-greeter").await?;
    Ok(())
}

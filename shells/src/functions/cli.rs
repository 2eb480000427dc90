//! `bunbase functions …`: deploy a folder of `.ts`/`.js` files, list
//! functions, read their log; a developer's commands against a running
//! platform.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use bunbase_client::{Client, Deployment, SourceFile};
use clap::{Parser, Subcommand};

/// Deploy and inspect functions on a running BunBase.
#[derive(Parser, Debug)]
#[command(name = "bunbase functions")]
pub struct FunctionsCli {
    /// The platform's URL.
    #[arg(
        long,
        env = "BUNBASE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// A credential with the admin right in the project (a secret key, an
    /// owner's token, a service token).
    #[arg(long, env = "BUNBASE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deploys the `.ts`/`.js`/`.mjs`/`.mts` files of DIR (sub-folders
    /// included; `node_modules` and dot-folders skipped) as a new version.
    /// Settings (env, secrets, triggers, auth, limits, allow_hosts, entry)
    /// come from DIR/function.json when it exists.
    Deploy {
        dir: PathBuf,
        #[arg(long)]
        project: String,
        /// The function's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// The entry module (default: index.ts, index.js, …).
        #[arg(long)]
        entry: Option<String>,
    },
    /// Lists the project's functions.
    List {
        #[arg(long)]
        project: String,
    },
    /// Prints the newest invocation records.
    Logs {
        #[arg(long)]
        project: String,
        #[arg(long)]
        function: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// The extensions deployed.
const SOURCE_EXTENSIONS: &[&str] = &["ts", "js", "mjs", "mts"];
/// The settings file read from the deployed folder.
const SETTINGS_FILE: &str = "function.json";

pub async fn main() -> anyhow::Result<()> {
    let args = FunctionsCli::parse_from(std::env::args().skip(1));
    let mut client = Client::new(&args.url)?;
    if let Some(token) = &args.token {
        client = client.with_token(token);
    }
    let functions = client.functions();
    match args.command {
        Command::Deploy {
            dir,
            project,
            name,
            entry,
        } => {
            let name = match name {
                Some(name) => name,
                None => dir
                    .canonicalize()
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .context("give --name: the folder has no name to use")?,
            };
            let mut deployment = settings(&dir)?;
            deployment.files = sources(&dir)?;
            if entry.is_some() {
                deployment.entry = entry;
            }
            let bytes: usize = deployment.files.iter().map(|f| f.code.len()).sum();
            eprint!(
                "deploying {name} ({} files, {}) to project {project} … ",
                deployment.files.len(),
                human(bytes)
            );
            let started = Instant::now();
            match functions.deploy(&project, &name, &deployment).await {
                Ok(version) => {
                    eprintln!(
                        "version {} ({} ms)",
                        version.number,
                        started.elapsed().as_millis()
                    );
                    println!(
                        "{}/functions/v1/projects/{project}/fn/{name}",
                        args.url.trim_end_matches('/')
                    );
                }
                Err(e) => {
                    eprintln!("failed");
                    bail!("{e}");
                }
            }
        }
        Command::List { project } => {
            for f in functions.list(&project).await? {
                println!("{:<32} version {} (latest {})", f.name, f.active, f.latest);
            }
        }
        Command::Logs {
            project,
            function,
            limit,
        } => {
            let page = functions
                .logs(&project, function.as_deref(), None, limit)
                .await?;
            for i in page.invocations {
                println!(
                    "{} {} v{} {} {} {}µs{}{}",
                    i.id,
                    i.function,
                    i.version,
                    i.trigger.as_str(),
                    i.outcome.as_str(),
                    i.duration_us,
                    if i.cold { " cold" } else { "" },
                    i.error.map(|e| format!(" — {e}")).unwrap_or_default()
                );
                for line in i.logs {
                    println!("    [{}] {}", line.level, line.message);
                }
            }
        }
    }
    Ok(())
}

/// DIR/function.json, or defaults.
fn settings(dir: &Path) -> anyhow::Result<Deployment> {
    let path = dir.join(SETTINGS_FILE);
    if !path.exists() {
        return Ok(Deployment::default());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let deployment: Deployment = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid deployment settings", path.display()))?;
    if !deployment.files.is_empty() {
        bail!(
            "{}: list no files there; they are read from the folder",
            path.display()
        );
    }
    Ok(deployment)
}

/// Every source file under `dir`, with `/`-separated relative paths.
fn sources(dir: &Path) -> anyhow::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("cannot read {}", current.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') || file_name == "node_modules" {
                continue;
            }
            if entry.file_type()?.is_dir() {
                pending.push(path);
                continue;
            }
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !SOURCE_EXTENSIONS.contains(&extension) || file_name.ends_with(".d.ts") {
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .context("a file outside the folder")?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let code = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push(SourceFile {
                path: relative,
                code,
            });
        }
    }
    if files.is_empty() {
        bail!("no .ts or .js files in {}", dir.display());
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn human(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

//! `bunbase`: every service in one process on one port, each under its
//! gateway prefix, on embedded defaults under `--data-dir` (SQLite files,
//! the in-process KV engine with its log, a development master key), or a
//! subset of them (`--services events,kv`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bunbase_core::auth::IdentityConfig;
use bunbase_core::auth::StaticTokens;
use bunbase_core::auth::password::Passwords;
use bunbase_core::config::StoreUrl;
use bunbase_core::id::random_hex;

use crate::assembly::{self, Host, ServiceModule};
use crate::buncast::{BuncastModule, EventsArgs};
use crate::bundoc::DocsArgs;
use crate::bunkms::{KmsArgs, KmsModule};
use crate::cli::{self, CommonArgs, CredentialArgs, DataDirArgs};
use crate::functions::{FunctionsArgs, FunctionsModule};
use crate::identity::{AccountArgs, IdentityModule, IdentitySource, PlatformModule, issuer};
use crate::kit;
use crate::kvmanager::{EmbeddedKvArgs, KvArgs};
use crate::storage::{StorageArgs, StorageModule};

/// BunBase all-in-one: the whole platform in one process.
#[derive(clap::Parser, Debug)]
#[command(name = "bunbase", version)]
pub struct AllInOneArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The platform's public URL (the token issuer is this + /api); default http://<listen address>.
    #[arg(long, env = "BUNBASE_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// The services to run, comma-separated: api, events, kv, kms, bundoc,
    /// storage, functions (or `all`). The others' prefixes answer 404.
    #[arg(long, env = "BUNBASE_SERVICES", default_value = "all")]
    pub services: String,
    #[command(flatten)]
    pub events: EventsArgs,
    #[command(flatten)]
    pub kv: KvArgs,
    #[command(flatten)]
    pub embedded_kv: EmbeddedKvArgs,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub docs: DocsArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub functions: FunctionsArgs,
}

/// Every service the all-in-one can run, in start order (identity first:
/// the others accept its credentials; BunKMS before Bundoc, which keeps its
/// field keys there). A new service is one more line here.
fn catalogue(args: &AllInOneArgs, issuer: String) -> anyhow::Result<Vec<Box<dyn ServiceModule>>> {
    let identity = IdentityModule {
        store: IdentitySource::Url(StoreUrl::Sqlite(args.data.data_dir.join("identity.db"))),
        passwords: Passwords::owasp(),
        config: IdentityConfig {
            issuer,
            accounts: args.accounts.policy(),
            ..IdentityConfig::default()
        },
        cache_url: None,
    };
    Ok(vec![
        Box::new(PlatformModule(identity)),
        Box::new(KmsModule::Configured(args.kms.clone())),
        Box::new(BuncastModule),
        Box::new(args.kv.module(Some(&args.embedded_kv))?),
        Box::new(args.docs.module()?),
        Box::new(StorageModule::Configured(args.storage.clone())),
        Box::new(FunctionsModule(args.functions.clone())),
    ])
}

/// The gateway prefixes of every service the all-in-one can run (its
/// catalogue on default options), so that tests can check they cover them.
pub fn catalogue_prefixes() -> anyhow::Result<Vec<&'static str>> {
    use clap::Parser;
    let args = AllInOneArgs::try_parse_from(["bunbase", "--listen", "127.0.0.1:8080"])?;
    Ok(catalogue(&args, issuer("http://127.0.0.1:8080"))?
        .iter()
        .map(|module| module.about().prefix)
        .collect())
}

/// Which services run: `all`, or names (and aliases) separated by commas.
pub fn selection(
    spec: &str,
    modules: &[&dyn ServiceModule],
) -> Result<Vec<&'static str>, bunbase_core::Error> {
    let spec = spec.trim();
    if spec.is_empty() || spec == "all" {
        return Ok(modules.iter().map(|m| m.name()).collect());
    }
    let mut chosen = Vec::new();
    for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let wanted = raw.to_ascii_lowercase();
        let module = modules
            .iter()
            .find(|m| m.name() == wanted || m.about().aliases.contains(&wanted.as_str()))
            .ok_or_else(|| {
                let names: Vec<_> = modules.iter().map(|m| m.name()).collect();
                bunbase_core::Error::invalid(format!(
                    "unknown service {raw:?} in --services: the services are {} (or all)",
                    names.join(", ")
                ))
            })?;
        if !chosen.contains(&module.name()) {
            chosen.push(module.name());
        }
    }
    if chosen.is_empty() {
        return Err(bunbase_core::Error::invalid(
            "--services names no service; give some, or all",
        ));
    }
    Ok(chosen)
}

pub async fn main() -> anyhow::Result<()> {
    cli::init_tracing();
    if std::env::args().nth(1).as_deref() == Some("functions") {
        return crate::functions::cli::main().await;
    }
    let command = cli::prefixed_command::<AllInOneArgs>("BUNBASE", "127.0.0.1:8080").mut_arg(
        "tokens",
        |arg| {
            arg.help(
                "Service tokens, PROJECT:RIGHTS:TOKEN separated by commas (rights: r, w, a). \
                 Without any, a development token for project `demo` is created in the data directory.",
            )
        },
    );
    let args: AllInOneArgs = cli::from_command(command);
    let data_dir = args.data.data_dir.clone();
    let listener = tokio::net::TcpListener::bind(&args.common.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.common.listen))?;
    let address = listener.local_addr()?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let modules = catalogue(&args, issuer(&public_url))?;
    let modules: Vec<&dyn ServiceModule> = modules.iter().map(AsRef::as_ref).collect();
    let enabled = selection(&args.services, &modules)?;
    if args.embedded_kv.resp_listen.is_some() && !enabled.contains(&"kv") {
        anyhow::bail!("--resp-listen serves the kv service's engine: enable kv in --services");
    }
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;

    let mut host = Host::new(&data_dir);
    host.embedded = true;
    let dev_note = match args.credentials.tokens("BUNBASE")? {
        Some(tokens) => {
            host.accept(Arc::new(tokens));
            None
        }
        None => {
            let (tokens, token, path) = dev_tokens(&data_dir)?;
            host.accept(Arc::new(tokens));
            Some((token, path))
        }
    };
    if let Some(remote) = args.credentials.remote()? {
        host.accept(remote);
    }
    host.set_events(args.events.settings()?);
    kit::shutdown_on_signals(&host.shutdown);
    let assembly =
        assembly::assemble(&mut host, &modules, &|m| enabled.contains(&m.name())).await?;

    println!("BunBase all-in-one listening on http://{address}");
    println!("  data directory  {}", data_dir.display());
    for (prefix, summary) in &assembly.summaries {
        println!("  {prefix:<15} {summary}");
    }
    println!("  /health         health of every service");
    println!("  /metrics        Prometheus metrics of every service");
    if !assembly.disabled.is_empty() {
        let off: Vec<_> = assembly.disabled.iter().map(|(name, _)| *name).collect();
        println!("  not running     {} (--services)", off.join(", "));
    }
    for warning in &assembly.warnings {
        println!();
        println!("  {warning}");
    }
    if let Some((token, path)) = dev_note {
        println!();
        println!(
            "  No tokens configured: development token for project `demo` (stored in {}):",
            path.display()
        );
        println!("  {token}");
        println!("  Try: curl -X POST -H 'Authorization: Bearer {token}' \\");
        println!(
            "         -d '{{\"data\":{{\"hello\":\"world\"}}}}' http://{address}/events/v1/projects/demo/topics/greetings"
        );
    }
    assembly::serve(listener, assembly, host, args.common.server.config()).await?;
    println!("BunBase stopped");
    Ok(())
}

const DEV_TOKENS_FILE: &str = "dev-tokens";

/// Loads (or creates, mode 600) the development token file.
fn dev_tokens(data_dir: &Path) -> anyhow::Result<(StaticTokens, String, PathBuf)> {
    let path = data_dir.join(DEV_TOKENS_FILE);
    if !path.exists() {
        let line = format!("demo:rwa:bb_dev_{}\n", random_hex(32));
        bunbase_core::config::write_private_file(&path, line.as_bytes())?;
    }
    let spec = bunbase_core::config::read_secret_file(&path)?;
    let tokens = StaticTokens::parse(spec.expose())?;
    let token = spec
        .expose()
        .lines()
        .find_map(|l| l.splitn(3, ':').nth(2))
        .unwrap_or_default()
        .to_string();
    Ok((tokens, token, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvmanager::KvModule;

    #[test]
    fn services_are_chosen_by_name_or_alias() {
        let kv = KvModule::on(
            Arc::new(bunbase_core::kv::adapters::memory::MemoryKv::new(Arc::new(
                bunbase_core::kv::Engine::new(Default::default()),
            ))),
            Default::default(),
        );
        let modules: Vec<&dyn ServiceModule> = vec![&BuncastModule, &kv];
        assert_eq!(selection("all", &modules).unwrap(), ["events", "kv"]);
        assert_eq!(selection("", &modules).unwrap(), ["events", "kv"]);
        assert_eq!(
            selection(" KV, buncast,kv ", &modules).unwrap(),
            ["kv", "events"]
        );
        let err = selection("events,storage", &modules).unwrap_err();
        assert!(err.to_string().contains("\"storage\""), "{err}");
        assert!(err.to_string().contains("events, kv"), "{err}");
        assert!(selection(",", &modules).is_err());
    }
}

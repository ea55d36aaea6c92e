//! The `quarry` command line: `run` starts a node; the other commands talk to a node over
//! its REST API.

mod client;
mod ingest;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use quarry_config::NodeConfig;

use crate::node::{shutdown_signal, Node};

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7280";

#[derive(Parser)]
#[command(name = "quarry", version, about = "Log search on object storage")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// API key for nodes with authentication on: the `encoded` value, or `id:api_key`.
    #[arg(long, global = true, env = "QUARRY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A CA certificate (PEM) to trust for `https://` endpoints, besides the system's.
    #[arg(long, global = true, env = "QUARRY_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a node (single node, embedded defaults, unless --config says otherwise).
    Run {
        /// Node config file (YAML); any setting not given keeps its default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also create the `demo-logs` index and load generated events into it.
        #[arg(long)]
        demo: bool,
    },
    /// Manages indexes.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT)]
        endpoint: String,
    },
    /// Sends an NDJSON file (or stdin) to an index.
    Ingest {
        #[arg(long)]
        index: String,
        /// A file of one JSON document per line, or `-` for stdin.
        #[arg(long)]
        input_path: PathBuf,
        #[arg(long, default_value = DEFAULT_ENDPOINT)]
        endpoint: String,
        /// Request size; the node refuses bodies over its `ingest.max_request_body`.
        #[arg(long, default_value_t = 8)]
        batch_size_mib: usize,
        /// Requests in flight at once: the node maps one while it syncs another to disk.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// `force` (default) makes the documents searchable before the command returns;
        /// `auto` leaves that to the index's commit timeout.
        #[arg(long, default_value = "force")]
        commit: String,
    },
    /// Writes generated log events (NDJSON) to stdout: the demo and benchmark dataset.
    GenerateLogs {
        #[arg(long, default_value_t = 1_000_000)]
        docs: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Events per second of log time.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Log time of the first event, RFC 3339 (like gen_logs.py's `--start`).
        #[arg(long, default_value = "2026-01-01T00:00:00Z")]
        start: String,
    },
    /// Creates, lists and invalidates API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT)]
        endpoint: String,
    },
    /// Searches an index and prints the JSON response.
    Search {
        #[arg(long)]
        index: String,
        #[arg(long)]
        query: String,
        #[arg(long)]
        start_timestamp: Option<i64>,
        #[arg(long)]
        end_timestamp: Option<i64>,
        #[arg(long)]
        max_hits: Option<usize>,
        #[arg(long)]
        start_offset: Option<usize>,
        #[arg(long)]
        sort_by: Option<String>,
        #[arg(long, default_value = DEFAULT_ENDPOINT)]
        endpoint: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Creates a key and prints it (its secret is shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// Index patterns the key may use, comma-separated (e.g. `team-a-*`).
        #[arg(long, value_delimiter = ',')]
        indices: Vec<String>,
        /// Privileges on those indexes: read, write, manage, all (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "read")]
        privileges: Vec<String>,
        /// Cluster privileges: monitor, manage, manage_security, all (comma-separated).
        #[arg(long, value_delimiter = ',')]
        cluster: Vec<String>,
        /// E.g. `30d`; unset, the key never expires.
        #[arg(long)]
        expiration: Option<String>,
    },
    List,
    /// Invalidates a key at once on every node (within seconds).
    Revoke {
        id: String,
    },
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Creates an index from a YAML or JSON config file.
    Create {
        #[arg(long)]
        index_config: PathBuf,
    },
    List,
    Describe {
        index_id: String,
    },
    Delete {
        index_id: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let connection = client::Connection {
        api_key: cli.api_key,
        ca_cert: cli.ca_cert,
    };
    match runtime.block_on(run_command(cli.command, connection)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    // chitchat warns once per packet it drops (another cluster's, or garbage): anyone who
    // can send UDP to the gossip port could flood the log. Membership changes are logged by
    // quarry_control_plane instead.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn,chitchat=error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

async fn run_command(command: Command, connection: client::Connection) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config, demo } => {
            init_logging();
            let node_config = match config {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?;
                    NodeConfig::parse_yaml(&text)
                        .with_context(|| format!("in `{}`", path.display()))?
                }
                None => NodeConfig::default(),
            };
            let node = Node::start(node_config).await?;
            let endpoint = format!("http://{}", node.listen_addr);
            if demo {
                // Loading runs beside the server so a signal can still stop the node.
                tokio::select! {
                    result = crate::demo::load_demo(&node) => result?,
                    _ = shutdown_signal() => {
                        node.shutdown().await?;
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                crate::demo::print_examples(&endpoint);
            }
            shutdown_signal().await;
            node.shutdown().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Index { command, endpoint } => {
            let client = client::Client::new(&endpoint, &connection)?;
            match command {
                IndexCommand::Create { index_config } => {
                    let body = std::fs::read(&index_config)
                        .with_context(|| format!("cannot read `{}`", index_config.display()))?;
                    let is_json = index_config
                        .extension()
                        .is_some_and(|extension| extension == "json");
                    let response = client.create_index(body, is_json).await?;
                    println!(
                        "Index `{}` created.",
                        response["index_uid"].as_str().unwrap_or_default()
                    );
                }
                IndexCommand::List => {
                    let indexes = client.get_json("/api/v1/indexes").await?;
                    println!("{:<30} INDEX URI", "INDEX ID");
                    for index in indexes.as_array().into_iter().flatten() {
                        let config = &index["index_config"];
                        println!(
                            "{:<30} {}",
                            config["index_id"].as_str().unwrap_or_default(),
                            config["index_uri"].as_str().unwrap_or_default()
                        );
                    }
                }
                IndexCommand::Describe { index_id } => {
                    let description = client
                        .get_json(&format!("/api/v1/indexes/{index_id}"))
                        .await?;
                    println!("{}", serde_json::to_string_pretty(&description)?);
                }
                IndexCommand::Delete { index_id } => {
                    let response = client
                        .delete(&format!("/api/v1/indexes/{index_id}"))
                        .await?;
                    let num_splits = response["deleted_splits"]
                        .as_array()
                        .map(Vec::len)
                        .unwrap_or_default();
                    println!("Index `{index_id}` deleted ({num_splits} splits removed).");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest {
            index,
            input_path,
            endpoint,
            batch_size_mib,
            concurrency,
            commit,
        } => {
            let client = client::Client::new(&endpoint, &connection)?;
            let commit_mode: quarry_indexer::CommitMode =
                commit.parse().map_err(anyhow::Error::msg)?;
            let summary = ingest::ingest_file(
                &client,
                &index,
                &input_path,
                batch_size_mib.max(1) << 20,
                concurrency,
                commit_mode,
            )
            .await?;
            Ok(summary.exit_code())
        }
        Command::GenerateLogs {
            docs,
            seed,
            rate,
            start,
        } => {
            use std::io::Write;
            let start =
                time::OffsetDateTime::parse(&start, &time::format_description::well_known::Rfc3339)
                    .map_err(|error| {
                        anyhow::anyhow!("`--start {start}` is not an RFC 3339 time: {error}")
                    })?;
            let start_micros = i64::try_from(start.unix_timestamp_nanos() / 1_000)
                .map_err(|_| anyhow::anyhow!("`--start` is out of range"))?;
            let mut generator = crate::demo_logs::LogGenerator::new(seed, start_micros, rate);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let mut line = String::with_capacity(512);
            for _ in 0..docs {
                line.clear();
                generator.write_next_line(&mut line);
                out.write_all(line.as_bytes())?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ApiKey { command, endpoint } => {
            let client = client::Client::new(&endpoint, &connection)?;
            match command {
                ApiKeyCommand::Create {
                    name,
                    indices,
                    privileges,
                    cluster,
                    expiration,
                } => {
                    let mut role = serde_json::json!({ "cluster": cluster });
                    if !indices.is_empty() {
                        role["indices"] =
                            serde_json::json!([{ "names": indices, "privileges": privileges }]);
                    }
                    let mut request = serde_json::json!({
                        "name": name,
                        "role_descriptors": { name.clone(): role },
                    });
                    if let Some(expiration) = expiration {
                        request["expiration"] = serde_json::json!(expiration);
                    }
                    let key = client.post_json("/api/v1/api-keys", &request).await?;
                    println!("{}", serde_json::to_string_pretty(&key)?);
                }
                ApiKeyCommand::List => {
                    let listed = client.get_json("/api/v1/api-keys").await?;
                    println!("{:<22} {:<24} {:<12} ROLES", "ID", "NAME", "STATE");
                    for key in listed["api_keys"].as_array().into_iter().flatten() {
                        let state = if key["invalidated"] == serde_json::json!(true) {
                            "invalidated"
                        } else {
                            "valid"
                        };
                        let roles: Vec<&String> = key["role_descriptors"]
                            .as_object()
                            .map(|roles| roles.keys().collect())
                            .unwrap_or_default();
                        println!(
                            "{:<22} {:<24} {:<12} {}",
                            key["id"].as_str().unwrap_or_default(),
                            key["name"].as_str().unwrap_or_default(),
                            state,
                            roles
                                .iter()
                                .map(|role| role.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        );
                    }
                }
                ApiKeyCommand::Revoke { id } => {
                    let answer = client.delete(&format!("/api/v1/api-keys/{id}")).await?;
                    let revoked = answer["invalidated_api_keys"]
                        .as_array()
                        .is_some_and(|ids| !ids.is_empty());
                    if revoked {
                        println!("API key `{id}` invalidated.");
                    } else {
                        println!("API key `{id}` was already invalidated or does not exist.");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Search {
            index,
            query,
            start_timestamp,
            end_timestamp,
            max_hits,
            start_offset,
            sort_by,
            endpoint,
        } => {
            let client = client::Client::new(&endpoint, &connection)?;
            let mut request = serde_json::json!({ "query": query });
            let fields = [
                (
                    "start_timestamp",
                    start_timestamp.map(serde_json::Value::from),
                ),
                ("end_timestamp", end_timestamp.map(serde_json::Value::from)),
                ("max_hits", max_hits.map(serde_json::Value::from)),
                ("start_offset", start_offset.map(serde_json::Value::from)),
                ("sort_by", sort_by.map(serde_json::Value::from)),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    request[name] = value;
                }
            }
            let response = client
                .post_json(&format!("/api/v1/{index}/search"), &request)
                .await?;
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

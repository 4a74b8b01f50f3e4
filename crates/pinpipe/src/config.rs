//! The one typed configuration tree, loaded in layers (later wins):
//!
//! 1. defaults ([`Config::default`], the only place defaults live);
//! 2. a TOML file: `--config FILE`, else `$PINPIPE_CONFIG`, else `./pinpipe.toml` when present;
//! 3. environment variables `PINPIPE_<KEY>`, nested keys joined by `__` (`PINPIPE_SOURCE__URL`);
//! 4. command-line flags.
//!
//! Unknown keys are errors (`deny_unknown_fields`), and every error names the key and the file or
//! variable it came from.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use pinpipe_api::ApiConfig;
use pinpipe_batch::BatchConfig;
use pinpipe_emulate::EmulateConfig;
use pinpipe_log::LogConfig;
use pinpipe_log::config::ResolvedLog;
use pinpipe_model::Names;
use pinpipe_schedule::ScheduleConfig;
use pinpipe_sink::SinkConfig;
use pinpipe_source::{SourceConfig, SourceUrl};
use pinpipe_store::StoreConfig;
use pinpipe_stream::StreamConfig;
use serde::{Deserialize, Serialize};

/// Name of the configuration file looked for in the working directory.
pub const DEFAULT_FILE: &str = "pinpipe.toml";
/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "PINPIPE_";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding every embedded store (source database, log, objects, tables).
    pub data_dir: PathBuf,
    /// Prefix of every topic, stream and table name (`<prefix>.pin`, `streaming-<prefix>-pin`, ...).
    pub prefix: String,
    /// The source database.
    pub source: SourceConfig,
    /// The log (topics and streams).
    pub log: LogConfig,
    /// The ingestion API.
    pub api: ApiConfig,
    /// The object store (the sink's output, the batch job's input).
    pub store: StoreConfig,
    /// The sink connector.
    pub sink: SinkConfig,
    /// The posting emulator.
    pub emulate: EmulateConfig,
    /// Where Delta tables live (the batch job's clean tables, the streaming job's tables).
    pub warehouse: StoreConfig,
    /// The batch job.
    pub batch: BatchConfig,
    /// The streaming job.
    pub stream: StreamConfig,
    /// The scheduler of the batch job.
    pub schedule: ScheduleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(".pinpipe"),
            prefix: pinpipe_model::names::DEFAULT_PREFIX.to_owned(),
            source: SourceConfig::default(),
            log: LogConfig::default(),
            api: ApiConfig::default(),
            store: StoreConfig::default(),
            sink: SinkConfig::default(),
            emulate: EmulateConfig::default(),
            warehouse: StoreConfig::default(),
            batch: BatchConfig::default(),
            stream: StreamConfig::default(),
            schedule: ScheduleConfig::default(),
        }
    }
}

/// A configuration value that is well-formed TOML but not acceptable.
#[derive(Debug)]
pub struct Invalid {
    /// Dotted key, e.g. `source.url`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

/// What a validated configuration resolves to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Names derived from the prefix.
    pub names: Names,
    /// The source database.
    pub source: SourceUrl,
    /// The log.
    pub log: ResolvedLog,
    /// The API.
    pub api: pinpipe_api::Resolved,
    /// The object store.
    pub store: pinpipe_store::Resolved,
    /// The sink.
    pub sink: pinpipe_sink::config::Resolved,
    /// The emulator.
    pub emulate: pinpipe_emulate::config::Resolved,
    /// The warehouse.
    pub warehouse: pinpipe_store::Resolved,
    /// The batch job.
    pub batch: pinpipe_batch::config::Resolved,
    /// The cluster the batch job reads and cleans on (`batch.cluster`), if any.
    pub cluster: Option<pinpipe_cluster::SchedulerAddr>,
    /// The streaming job.
    pub stream: pinpipe_stream::config::Resolved,
    /// The scheduler.
    pub schedule: pinpipe_schedule::Resolved,
}

impl Config {
    /// Checks every value without touching the outside world.
    pub fn validate(&self) -> Result<Resolved, Invalid> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(Invalid { key: "data_dir", message: "must not be empty".into() });
        }
        let names = Names::new(&self.prefix).map_err(|e| Invalid { key: "prefix", message: e.to_string() })?;
        let source =
            self.source.validate(&self.data_dir).map_err(|e| Invalid { key: "source.url", message: e.to_string() })?;
        let log = self.log.validate(&self.data_dir).map_err(|(key, message)| Invalid { key, message })?;
        let mut api = self.api.validate(log.default_partitions).map_err(|(key, message)| Invalid { key, message })?;
        api.state_dir = Some(self.data_dir.join("api"));
        let store = self.store.validate(&self.data_dir).map_err(|e| Invalid {
            key: if matches!(&e, pinpipe_store::Error::InvalidUrl { url, .. } if self.store.s3_endpoint.as_deref() == Some(url.as_str())) {
                "store.s3_endpoint"
            } else {
                "store.url"
            },
            message: e.to_string(),
        })?;
        let sink = self.sink.validate(&self.prefix).map_err(|(key, message)| Invalid { key, message })?;
        let emulate = self.emulate.validate().map_err(|(key, message)| Invalid { key, message })?;
        let warehouse = self.warehouse.validate_or(self.data_dir.join("warehouse")).map_err(|e| Invalid {
            key: if matches!(&e, pinpipe_store::Error::InvalidUrl { url, .. } if self.warehouse.s3_endpoint.as_deref() == Some(url.as_str())) {
                "warehouse.s3_endpoint"
            } else {
                "warehouse.url"
            },
            message: e.to_string(),
        })?;
        let batch = self.batch.validate(&self.data_dir).map_err(|(key, message)| Invalid { key, message })?;
        let cluster = self
            .batch
            .cluster
            .as_deref()
            .map(pinpipe_cluster::SchedulerAddr::parse)
            .transpose()
            .map_err(|e| Invalid { key: "batch.cluster", message: e.to_string() })?;
        let stream = self.stream.validate().map_err(|(key, message)| Invalid { key, message })?;
        let schedule = self.schedule.validate().map_err(|(key, message)| Invalid { key, message })?;
        Ok(Resolved { names, source, log, api, store, sink, emulate, warehouse, batch, cluster, stream, schedule })
    }
}

const FLAG_PROVIDER: &str = "command-line flag";

/// Command-line flags that override configuration keys.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub file: Option<PathBuf>,
    /// `(dotted key, flag, value)` from flags; the flag name is what errors show.
    pub values: Vec<(&'static str, &'static str, Value)>,
}

impl Overrides {
    /// Sets `key` from `--flag` when the flag was given.
    pub fn set(&mut self, key: &'static str, flag: &'static str, value: Option<Value>) {
        if let Some(v) = value {
            self.values.push((key, flag, v));
        }
    }
}

/// The flags as a figment provider, so that errors can name the flag a value came from.
struct Flags(Dict, std::collections::HashMap<String, &'static str>);

impl Provider for Flags {
    fn metadata(&self) -> Metadata {
        let flags = self.1.clone();
        Metadata::named(FLAG_PROVIDER)
            .interpolater(move |_, keys| flags.get(&keys.join(".")).map_or_else(|| keys.join("."), |f| (*f).to_owned()))
    }
    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

fn nest(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict.entry(head.to_owned()).or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                nest(inner, rest, value);
            }
        }
    }
}

/// A loaded configuration with where each value came from.
#[derive(Clone)]
pub struct Loaded {
    /// The values.
    pub config: Config,
    /// What they resolve to.
    pub resolved: Resolved,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    figment: Figment,
}

impl Loaded {
    /// Where `key` was set: a file, an environment variable, a flag or the default.
    pub fn origin(&self, key: &str) -> String {
        origin(&self.figment, key)
    }
}

fn origin(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(md) if md.name != "default" => {
            let keys: Vec<&str> = key.split('.').collect();
            describe_source(md, &keys)
        }
        _ => "default".to_owned(),
    }
}

/// "pinpipe.toml", "`PINPIPE_SOURCE__URL` environment variable", "command-line flag".
fn describe_source(md: &Metadata, keys: &[&str]) -> String {
    match &md.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ if keys.is_empty() => md.name.to_string(),
        _ if md.name == FLAG_PROVIDER => format!("{FLAG_PROVIDER} {}", md.interpolate(&Profile::Default, keys)),
        _ if md.name.contains("environment") => {
            format!("environment variable {ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
        }
        _ => md.name.to_string(),
    }
}

/// Loads the configuration: defaults < file < environment < flags.
pub fn load(overrides: &Overrides) -> anyhow::Result<Loaded> {
    let file = match (&overrides.file, std::env::var_os("PINPIPE_CONFIG")) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(f)) if !f.is_empty() => Some(PathBuf::from(f)),
        _ => Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE)),
    };
    let mut figment = Figment::from(Serialized::defaults(Config::default()).profile(Profile::Default));
    // Mark defaults so that origins can say "default".
    figment = Figment::from(Named(figment, "default"));
    if let Some(f) = &file {
        if !f.is_file() {
            return Err(anyhow!("configuration file {} does not exist", f.display()));
        }
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read configuration file {}", f.display()))?;
        toml::from_str::<toml::Table>(&text)
            .map_err(|e| anyhow!("{}: invalid TOML: {}", f.display(), one_line(&e.to_string())))?;
        figment = figment.merge(Toml::file(f));
    }
    figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]));
    let mut flags = Dict::new();
    let mut names = std::collections::HashMap::new();
    for (key, flag, value) in &overrides.values {
        nest(&mut flags, key, value.clone());
        names.insert((*key).to_owned(), *flag);
    }
    figment = figment.merge(Flags(flags, names));

    let config: Config = figment.extract().map_err(|e| anyhow!(describe_figment_error(e)))?;
    let resolved = config.validate().map_err(|inv| {
        anyhow!("invalid value for `{}` (from {}): {}", inv.key, origin(&figment, inv.key), inv.message)
    })?;
    Ok(Loaded { config, resolved, file, figment })
}

/// A provider wrapper that renames the provider in metadata.
struct Named(Figment, &'static str);

impl Provider for Named {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.1)
    }
    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        self.0.data()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Renders figment errors as one line per error: what, which key, from where.
fn describe_figment_error(err: figment::Error) -> String {
    let mut lines = Vec::new();
    for e in err {
        let key = if e.path.is_empty() { String::new() } else { e.path.join(".") };
        let keys: Vec<&str> = e.path.iter().map(String::as_str).collect();
        let origin = e.metadata.as_ref().map_or_else(|| "configuration".to_owned(), |md| describe_source(md, &keys));
        let what = match &e.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                format!("unknown key `{field}` (expected one of: {})", expected.join(", "))
            }
            kind => one_line(&kind.to_string()),
        };
        if key.is_empty() {
            lines.push(format!("configuration error in {origin}: {what}"));
        } else {
            lines.push(format!("configuration error for `{key}` in {origin}: {what}"));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let r = Config::default().validate().unwrap();
        assert_eq!(r.names.prefix(), "pinterest");
        assert_eq!(r.source, SourceUrl::Sqlite(PathBuf::from(".pinpipe/source.db")));
    }

    #[test]
    fn invalid_values_name_their_key() {
        let c = Config { prefix: "a-b".into(), ..Config::default() };
        assert_eq!(c.validate().unwrap_err().key, "prefix");
        let c = Config { source: SourceConfig { url: Some("oracle://x".into()) }, ..Config::default() };
        assert_eq!(c.validate().unwrap_err().key, "source.url");
    }

    #[test]
    fn flags_nest_into_sections() {
        let mut d = Dict::new();
        nest(&mut d, "source.url", Value::from("sqlite://x.db"));
        nest(&mut d, "prefix", Value::from("p"));
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Flags(d, Default::default()))
            .extract()
            .unwrap();
        assert_eq!(c.source.url.as_deref(), Some("sqlite://x.db"));
        assert_eq!(c.prefix, "p");
    }
}

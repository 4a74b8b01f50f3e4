//! `pinpipe config`: the effective configuration as TOML, each value annotated with where it
//! came from (default, file, environment variable or flag). Secrets are masked.

use crate::config::Loaded;
use crate::output::line;

/// Keys whose values are never printed.
const SECRET_KEYS: [&str; 2] = ["api.api_keys", "emulate.api_key"];

fn show(key: &str, value: &toml::Value) -> String {
    if SECRET_KEYS.contains(&key) && value.as_str().is_some_and(|s| !s.is_empty()) {
        return "\"***\"".into();
    }
    match (key, value) {
        ("source.url", toml::Value::String(url)) => {
            toml::Value::String(pinpipe_source::config::redact(url)).to_string()
        }
        _ => value.to_string(),
    }
}

/// Prints the configuration.
pub fn run(loaded: &Loaded) -> anyhow::Result<()> {
    let file = loaded.file.as_ref().map_or("none".to_owned(), |f| f.display().to_string());
    line("# Effective pinpipe configuration (defaults < file < PINPIPE_* environment < flags).")?;
    line(&format!("# Configuration file: {file}"))?;
    let table = toml::Table::try_from(&loaded.config)?;
    let (sections, scalars): (Vec<_>, Vec<_>) = table.iter().partition(|(_, v)| v.is_table());
    for (k, v) in scalars {
        line(&format!("{k} = {}  # {}", show(k, v), loaded.origin(k)))?;
    }
    for (section, v) in sections {
        line("")?;
        line(&format!("[{section}]"))?;
        if let Some(t) = v.as_table() {
            for (k, v) in t {
                let key = format!("{section}.{k}");
                line(&format!("{k} = {}  # {}", show(&key, v), loaded.origin(&key)))?;
            }
        }
        match section.as_str() {
            "source" if loaded.config.source.url.is_none() => {
                line(&format!("# url unset: embedded SQLite at {}", loaded.resolved.source.display()))?;
            }
            "log" if loaded.config.log.dir.is_none() => {
                line(&format!("# dir unset: embedded log at {}", loaded.resolved.log.dir.display()))?;
            }
            "store" if loaded.config.store.url.is_none() => {
                line(&format!("# url unset: {}", loaded.resolved.store.url.display()))?;
            }
            "warehouse" if loaded.config.warehouse.url.is_none() => {
                line(&format!("# url unset: {}", loaded.resolved.warehouse.url.display()))?;
            }
            "batch" => {
                if loaded.config.batch.output.is_none() {
                    line(&format!("# output unset: {}", loaded.resolved.batch.output.display()))?;
                }
                if loaded.config.batch.spill_dir.is_none() {
                    line(&format!("# spill_dir unset: {}", loaded.resolved.batch.spill_dir.display()))?;
                }
            }
            "sink" if loaded.config.sink.topics_regex.is_none() => {
                line(&format!("# topics_regex unset: {}", loaded.resolved.sink.topics.as_str()))?;
            }
            _ => {}
        }
    }
    let n = &loaded.resolved.names;
    line("")?;
    line("# Derived names:")?;
    for kind in pinpipe_model::Kind::ALL {
        line(&format!("#   {kind}: topic {}, stream {}, table {}", n.topic(kind), n.stream(kind), n.table(kind)))?;
    }
    Ok(())
}

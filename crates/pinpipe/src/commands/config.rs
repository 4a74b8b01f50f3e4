//! `pinpipe config`: the effective configuration as TOML, each value annotated with where it
//! came from (default, file, environment variable or flag).

use crate::config::Loaded;
use crate::output::line;

/// Prints the configuration.
pub fn run(loaded: &Loaded) -> anyhow::Result<()> {
    let c = &loaded.config;
    let file = loaded.file.as_ref().map_or("none".to_owned(), |f| f.display().to_string());
    line("# Effective pinpipe configuration (defaults < file < PINPIPE_* environment < flags).")?;
    line(&format!("# Configuration file: {file}"))?;
    let value = |v: &str| toml::Value::String(v.to_owned()).to_string();
    line(&format!("data_dir = {}  # {}", value(&c.data_dir.display().to_string()), loaded.origin("data_dir")))?;
    line(&format!("prefix = {}  # {}", value(&c.prefix), loaded.origin("prefix")))?;
    line("")?;
    line("[source]")?;
    match &c.source.url {
        Some(url) => {
            line(&format!("url = {}  # {}", value(&pinpipe_source::config::redact(url)), loaded.origin("source.url")))?
        }
        None => line(&format!("# url unset: embedded SQLite at {}", loaded.resolved.source.display()))?,
    }
    let n = &loaded.resolved.names;
    line("")?;
    line("# Derived names:")?;
    for kind in pinpipe_model::Kind::ALL {
        line(&format!("#   {kind}: topic {}, stream {}, table {}", n.topic(kind), n.stream(kind), n.table(kind)))?;
    }
    Ok(())
}

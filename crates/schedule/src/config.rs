//! The `[schedule]` configuration section.

use std::time::Duration;

use croner::Cron;
use serde::{Deserialize, Serialize};

/// The `[schedule]` section. Times are UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// When to run: `@daily` (midnight UTC), `@hourly`, or a cron expression with 5 fields
    /// (`30 2 * * *`) or 6 (seconds first).
    pub cron: String,
    /// Attempts after a failed one (the classic DAG: 3).
    pub retries: u32,
    /// Wait between attempts (the classic DAG: 2 minutes).
    pub retry_delay: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig { cron: "@daily".into(), retries: 3, retry_delay: "2m".into() }
    }
}

/// A validated `[schedule]` section.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The expression as written.
    pub expression: String,
    /// The parsed schedule.
    pub cron: Cron,
    /// Attempts after a failed one.
    pub retries: u32,
    /// Wait between attempts.
    pub retry_delay: Duration,
}

/// Parses a cron expression (5 or 6 fields, or a nickname such as `@daily`).
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    croner::parser::CronParser::new()
        .parse(expression.trim())
        .map_err(|e| format!("{expression:?} is not a cron expression (e.g. @daily, @hourly, \"30 2 * * *\"): {e}"))
}

impl ScheduleConfig {
    /// Checks the section; returns `(key, message)` for the first bad value.
    pub fn validate(&self) -> Result<Resolved, (&'static str, String)> {
        let cron = parse_cron(&self.cron).map_err(|m| ("schedule.cron", m))?;
        if self.retries > 100 {
            return Err(("schedule.retries", format!("must be at most 100, not {}", self.retries)));
        }
        let text = self.retry_delay.trim();
        let retry_delay = humantime::parse_duration(text)
            .map_err(|e| ("schedule.retry_delay", format!("{text:?} is not a duration like 2m or 30s: {e}")))?;
        if retry_delay > Duration::from_secs(24 * 3600) {
            return Err(("schedule.retry_delay", format!("must be at most 24h, not {text}")));
        }
        Ok(Resolved { expression: self.cron.trim().to_owned(), cron, retries: self.retries, retry_delay })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_the_classic_dags_policy() {
        let r = ScheduleConfig::default().validate().unwrap();
        assert_eq!((r.expression.as_str(), r.retries, r.retry_delay), ("@daily", 3, Duration::from_secs(120)));
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T13:05:00Z").unwrap().to_utc();
        let next = r.cron.find_next_occurrence(&at, false).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-25T00:00:00+00:00");
    }

    #[test]
    fn expressions_and_bad_values() {
        let five = ScheduleConfig { cron: "30 2 * * *".into(), ..Default::default() }.validate().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T13:05:00Z").unwrap().to_utc();
        assert_eq!(five.cron.find_next_occurrence(&at, false).unwrap().to_rfc3339(), "2026-11-25T02:30:00+00:00");
        let six = ScheduleConfig { cron: "*/10 * * * * *".into(), ..Default::default() }.validate().unwrap();
        assert_eq!(six.cron.find_next_occurrence(&at, false).unwrap().to_rfc3339(), "2026-11-24T13:05:10+00:00");
        for (bad, key) in [("every day", "schedule.cron"), ("61 * * * *", "schedule.cron")] {
            let c = ScheduleConfig { cron: bad.into(), ..Default::default() };
            assert_eq!(c.validate().unwrap_err().0, key, "{bad}");
        }
        let c = ScheduleConfig { retry_delay: "soon".into(), ..Default::default() };
        assert_eq!(c.validate().unwrap_err().0, "schedule.retry_delay");
        let c = ScheduleConfig { retries: 1000, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().0, "schedule.retries");
    }
}

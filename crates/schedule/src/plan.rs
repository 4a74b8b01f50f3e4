//! What is due when the scheduler wakes up: the pure part of the schedule, tested on its own.
//!
//! The scheduler sleeps until the next tick. When it wakes up at `now` it runs the **latest**
//! tick at or before `now`; ticks before that one (the process was stopped or suspended, or a
//! run lasted past them) are skipped, not caught up — Airflow's `catchup=False`.

use chrono::{DateTime, Utc};
use croner::Cron;

/// Most missed ticks reported one by one (a long outage on a per-second schedule would
/// otherwise flood the history).
pub const MAX_REPORTED_MISSES: usize = 100;

/// The decision at `now` for the tick `waited_for`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The tick to run now, if one is due.
    pub run: Option<DateTime<Utc>>,
    /// Earlier ticks that are skipped (at most [`MAX_REPORTED_MISSES`]).
    pub missed: Vec<DateTime<Utc>>,
}

/// Decides what is due at `now` when the scheduler was waiting for `waited_for`.
pub fn due(cron: &Cron, waited_for: DateTime<Utc>, now: DateTime<Utc>) -> Due {
    if now < waited_for {
        return Due { run: None, missed: Vec::new() };
    }
    let mut ticks = vec![waited_for];
    let mut at = waited_for;
    while let Ok(next) = cron.find_next_occurrence(&at, false) {
        if next > now {
            break;
        }
        ticks.push(next);
        at = next;
        if ticks.len() >= MAX_REPORTED_MISSES {
            // Keep the newest tick reachable without listing every one in between.
            if let Ok(latest) = cron.find_previous_occurrence(&now, true)
                && latest > at
            {
                ticks.push(latest);
            }
            break;
        }
    }
    let run = ticks.pop();
    Due { run, missed: ticks }
}

/// The tick after `after`.
pub fn next_tick(cron: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after, false).ok()
}

/// The logical date of the run of `tick`: the tick's own date, as Airflow 3 gives it to a cron
/// schedule (`ds` of the DAG in `deploy/airflow`).
pub fn logical_date(tick: DateTime<Utc>) -> chrono::NaiveDate {
    tick.date_naive()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn daily() -> Cron {
        crate::config::parse_cron("@daily").unwrap()
    }

    #[test]
    fn nothing_is_due_before_the_tick() {
        assert_eq!(
            due(&daily(), t("2026-11-25T00:00:00Z"), t("2026-11-24T23:59:59Z")),
            Due { run: None, missed: vec![] }
        );
    }

    #[test]
    fn the_tick_is_run_when_woken_on_time() {
        let d = due(&daily(), t("2026-11-25T00:00:00Z"), t("2026-11-25T00:00:00.2Z"));
        assert_eq!(d, Due { run: Some(t("2026-11-25T00:00:00Z")), missed: vec![] });
    }

    #[test]
    fn missed_ticks_are_skipped_and_only_the_latest_runs() {
        // Asleep for three days and a bit: the ticks of the 25th and 26th are skipped.
        let d = due(&daily(), t("2026-11-25T00:00:00Z"), t("2026-11-27T08:00:00Z"));
        assert_eq!(d.run, Some(t("2026-11-27T00:00:00Z")));
        assert_eq!(d.missed, [t("2026-11-25T00:00:00Z"), t("2026-11-26T00:00:00Z")]);
    }

    #[test]
    fn a_long_outage_reports_a_bounded_number_of_misses_and_runs_the_latest() {
        let every_second = crate::config::parse_cron("* * * * * *").unwrap();
        let d = due(&every_second, t("2026-11-25T00:00:00Z"), t("2026-11-25T01:00:00Z"));
        assert_eq!(d.run, Some(t("2026-11-25T01:00:00Z")));
        assert_eq!(d.missed.len(), MAX_REPORTED_MISSES);
    }

    #[test]
    fn logical_dates_are_the_tick_dates() {
        assert_eq!(logical_date(t("2026-11-25T00:00:00Z")).to_string(), "2026-11-25");
        assert_eq!(logical_date(t("2026-11-25T23:59:59Z")).to_string(), "2026-11-25");
    }
}

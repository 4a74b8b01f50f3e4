//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) with one
//! chart and one table per question, readable offline and in any browser.
//!
//! Charts are `<svg class="chart">` elements whose bars are `<rect class="bar">`, each with a
//! `<title>` giving its exact value; a question with one key gets horizontal bars, one with two
//! keys (q2, q8) grouped vertical bars with a legend.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use crate::output::Table;
use crate::queries::{Chart, Question};

/// Colours of series and bars (Tableau 20, readable on white).
const PALETTE: [&str; 20] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#98df8a", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        o => o.to_string(),
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn fmt_int(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Horizontal bars, one per row.
fn bars(id: &str, t: &Table, label: &[&str], value: &str) -> String {
    let li: Vec<usize> = label.iter().filter_map(|c| t.column(c)).collect();
    let Some(vi) = t.column(value) else { return empty(id) };
    if t.rows.is_empty() {
        return empty(id);
    }
    let max = t.rows.iter().map(|r| num(&r[vi])).fold(0.0, f64::max).max(1.0);
    let (label_w, bar_w, row_h) = (300.0, 520.0, 22.0);
    let height = t.rows.len() as f64 * row_h + 10.0;
    let mut s = format!(
        r#"<svg class="chart" data-question="{id}" xmlns="http://www.w3.org/2000/svg" width="920" height="{height}" viewBox="0 0 920 {height}" role="img">"#
    );
    for (i, r) in t.rows.iter().enumerate() {
        let y = i as f64 * row_h + 5.0;
        let name = li.iter().map(|&c| text(&r[c])).collect::<Vec<_>>().join(" · ");
        let v = num(&r[vi]);
        let w = (v / max * bar_w).max(1.0);
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="label">{name}</text><rect class="bar" x="{label_w}" y="{y}" width="{w:.1}" height="{h}" fill="{fill}"><title>{name}: {val}</title></rect><text x="{vx:.1}" y="{ty}" class="value">{val}</text>"#,
            lx = label_w - 6.0,
            ty = y + 15.0,
            name = esc(&name),
            h = row_h - 6.0,
            fill = PALETTE[0],
            val = fmt_int(v),
            vx = label_w + w + 5.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars grouped by `group`, one colour per `series` value.
fn grouped(id: &str, t: &Table, group: &str, series: &str, value: &str) -> String {
    let (Some(gi), Some(si), Some(vi)) = (t.column(group), t.column(series), t.column(value)) else { return empty(id) };
    if t.rows.is_empty() {
        return empty(id);
    }
    // Groups in row order (rows are sorted by key); series sorted.
    let mut groups: Vec<String> = Vec::new();
    for r in &t.rows {
        let g = text(&r[gi]);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let series_vals: Vec<String> = t.rows.iter().map(|r| text(&r[si])).collect::<BTreeSet<_>>().into_iter().collect();
    let max = t.rows.iter().map(|r| num(&r[vi])).fold(0.0, f64::max).max(1.0);
    let (left, top, plot_h, bar_w, gap) = (70.0, 20.0, 300.0, 12.0, 18.0);
    let group_w = series_vals.len() as f64 * bar_w + gap;
    let plot_w = groups.len() as f64 * group_w;
    let legend_cols = 4usize;
    let legend_rows = series_vals.len().div_ceil(legend_cols);
    let width = (left + plot_w + 20.0).max(920.0);
    let legend_y = top + plot_h + 40.0;
    let height = legend_y + legend_rows as f64 * 18.0 + 10.0;
    let mut s = format!(
        r#"<svg class="chart" data-question="{id}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">"#
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let y = top + plot_h - plot_h * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end" class="value">{v}</text>"##,
            x2 = left + plot_w,
            tx = left - 4.0,
            ty = y + 4.0,
            v = fmt_int(v)
        );
    }
    for (g_idx, g) in groups.iter().enumerate() {
        let gx = left + g_idx as f64 * group_w + gap / 2.0;
        for r in t.rows.iter().filter(|r| &text(&r[gi]) == g) {
            let sv = text(&r[si]);
            let k = series_vals.iter().position(|x| *x == sv).unwrap_or(0);
            let v = num(&r[vi]);
            let h = (v / max * plot_h).max(1.0);
            let _ = write!(
                s,
                r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar_w}" height="{h:.1}" fill="{fill}"><title>{g} · {sv}: {val}</title></rect>"#,
                x = gx + k as f64 * bar_w,
                y = top + plot_h - h,
                fill = PALETTE[k % PALETTE.len()],
                g = esc(g),
                sv = esc(&sv),
                val = fmt_int(v),
            );
        }
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{y}" text-anchor="middle" class="label">{g}</text>"#,
            x = gx + (group_w - gap) / 2.0,
            y = top + plot_h + 16.0,
            g = esc(g)
        );
    }
    for (k, sv) in series_vals.iter().enumerate() {
        let x = left + (k % legend_cols) as f64 * 200.0;
        let y = legend_y + (k / legend_cols) as f64 * 18.0;
        let _ = write!(
            s,
            r#"<rect class="legend" x="{x}" y="{y}" width="12" height="12" fill="{fill}"/><text x="{tx}" y="{ty}" class="label">{sv}</text>"#,
            fill = PALETTE[k % PALETTE.len()],
            tx = x + 16.0,
            ty = y + 11.0,
            sv = esc(sv)
        );
    }
    s.push_str("</svg>");
    s
}

fn empty(id: &str) -> String {
    format!(
        r#"<svg class="chart" data-question="{id}" xmlns="http://www.w3.org/2000/svg" width="920" height="40" viewBox="0 0 920 40" role="img"><text x="10" y="25" class="label">no rows</text></svg>"#
    )
}

/// The chart of one answer.
pub fn chart(q: &Question, t: &Table) -> String {
    match q.chart {
        Chart::Bars { label, value } => bars(q.id, t, label, value),
        Chart::Grouped { group, series, value } => grouped(q.id, t, group, series, value),
    }
}

fn html_table(t: &Table) -> String {
    let mut s = String::from(r#"<table class="answer"><thead><tr>"#);
    for c in &t.columns {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        s.push_str("<tr>");
        for v in r {
            let cls = if v.is_number() { r#" class="n""# } else { "" };
            let _ = write!(s, "<td{cls}>{}</td>", esc(&text(v)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// The whole page. `facts` are (label, value) lines shown at the top.
pub fn render(title: &str, facts: &[(String, String)], answers: &[(Question, Table)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }}
dl.facts {{ display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }} dl.facts dt {{ color: #666; }}
svg.chart {{ display: block; margin: 1rem 0; max-width: 100%; height: auto; }}
svg .label {{ font-size: 12px; fill: #333; }} svg .value {{ font-size: 11px; fill: #555; }}
table.answer {{ border-collapse: collapse; margin: .5rem 0 1rem; }}
table.answer th, table.answer td {{ border: 1px solid #ddd; padding: 2px 8px; }} table.answer th {{ background: #f4f4f4; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
nav a {{ margin-right: .8rem; }}
</style></head><body>
<h1>{t}</h1>
<dl class="facts">"#,
        t = esc(title)
    );
    for (k, v) in facts {
        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    s.push_str("</dl><nav>");
    for (q, _) in answers {
        let _ = write!(s, r##"<a href="#{id}">{id}</a>"##, id = q.id);
    }
    s.push_str("</nav>");
    for (q, t) in answers {
        let _ = write!(
            s,
            r#"<section id="{id}"><h2>{id}. {title}</h2>{chart}<p>{n} rows</p>{table}</section>"#,
            id = q.id,
            title = esc(q.title),
            chart = chart(q, t),
            n = t.rows.len(),
            table = html_table(t)
        );
    }
    s.push_str("\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queries::QUESTIONS;

    #[test]
    fn charts_have_one_bar_per_row_and_escape_text() {
        let t = Table {
            columns: vec!["country".into(), "category".into(), "category_count".into()],
            rows: vec![vec!["A<b>".into(), "art".into(), 3.into()], vec!["B".into(), "diy".into(), 1.into()]],
        };
        let svg = chart(&QUESTIONS[0], &t);
        assert_eq!(svg.matches(r#"class="bar""#).count(), 2);
        assert!(svg.contains("A&lt;b&gt; · art: 3"));
        let q2 = Table {
            columns: vec!["post_year".into(), "category".into(), "category_count".into()],
            rows: vec![
                vec![2018.into(), "art".into(), 3.into()],
                vec![2018.into(), "diy".into(), 1.into()],
                vec![2019.into(), "art".into(), 7.into()],
            ],
        };
        let svg = chart(&QUESTIONS[1], &q2);
        assert_eq!(svg.matches(r#"class="bar""#).count(), 3);
        assert_eq!(svg.matches(r#"class="legend""#).count(), 2);
        assert!(chart(&QUESTIONS[2], &Table { columns: vec![], rows: vec![] }).contains("no rows"));
        assert_eq!(fmt_int(1234567.0), "1,234,567");
    }
}

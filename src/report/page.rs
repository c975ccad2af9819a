//! The page: a [`maud`] template that wraps each chart's SVG, its caption and any table of
//! exact numbers in a section, under a title and the run's key numbers, with inline CSS.
//!
//! maud escapes every piece of text it is given; chart SVG comes from plotters, which escapes
//! its own text, and is inserted as is.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::charts;
use super::error::ReportError;
use super::format::{fmt_count, fmt_value};
use super::model::{ActionTotals, HoldoutBucket, KSelection, TrackingPoint, PAliveMatrix, ProfileHeatmap, ReportData, SegmentSize, SegmentValues};
use crate::stats::{BoxStats, box_stats};

/// Renders the whole page. Pure: no I/O, no clock, deterministic output.
pub fn render_html(data: &ReportData) -> Result<String, ReportError> {
    let title = if data.title.trim().is_empty() { "segvalue report" } else { data.title.as_str() };
    let sections = [
        ("k-selection", "Choosing k", k_selection_parts(data.k_selection.as_ref())?),
        ("segment-sizes", "Segment sizes", segment_parts(data.segments.as_deref())?),
        ("segment-profiles", "Segment profiles", profile_parts(data.profile.as_ref())?),
        ("clv", "CLV by segment", clv_parts(data.clv_by_segment.as_deref())?),
        ("p-alive", "P(alive) by frequency and recency", p_alive_parts(data.p_alive.as_ref())?),
        ("holdout", "Holdout check", holdout_parts(data.holdout.as_deref())?),
        ("tracking", "Holdout tracking", tracking_parts(data.holdout_tracking.as_deref())?),
        ("actions", "Who to contact", action_parts(data.actions.as_deref())),
    ];
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { (title) }
                    section id="key-numbers" {
                        h2 { "Key numbers" }
                        @if data.key_numbers.is_empty() {
                            p.na { "No key numbers recorded." }
                        } @else {
                            dl.kv {
                                @for (label, value) in &data.key_numbers {
                                    dt { (label) } dd { (value) }
                                }
                            }
                        }
                    }
                    @for (id, heading, parts) in &sections {
                        (section(id, heading, parts.as_ref()))
                    }
                }
            }
        }
    };
    let mut html = page.into_string();
    html.push('\n');
    Ok(html)
}

/// A drawn section: caption (plain text), the SVG, and optional extra markup.
struct Parts {
    caption: String,
    svg: String,
    extra: Option<Markup>,
}

fn section(id: &str, heading: &str, parts: Option<&Parts>) -> Markup {
    html! {
        section id=(id) {
            h2 { (heading) }
            @match parts {
                None => { p.na { "Not run in this job." } }
                Some(drawn) => {
                    p.cap { (drawn.caption) }
                    @if !drawn.svg.is_empty() { figure { (PreEscaped(&drawn.svg)) } }
                    @if let Some(extra) = &drawn.extra { (extra) }
                }
            }
        }
    }
}

fn k_selection_parts(k: Option<&KSelection>) -> Result<Option<Parts>, ReportError> {
    let Some(k) = k.filter(|k| !k.rows.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(Parts {
        caption: format!(
            "Mean silhouette and stability (the mean adjusted Rand index of refits on bootstrap \
             resamples; both higher is better, left axis) and inertia (within-cluster sum of \
             squares, right axis) for each k tried; the dashed line marks the chosen k = {}.",
            k.chosen_k
        ),
        svg: charts::k_selection(k)?,
        extra: None,
    }))
}

fn segment_parts(s: Option<&[SegmentSize]>) -> Result<Option<Parts>, ReportError> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let total = s.iter().fold(0u64, |a, x| a.saturating_add(x.customers));
    Ok(Some(Parts {
        caption: format!(
            "Customers per segment, with each segment's share of the {} segmented customers.{}",
            fmt_count(total),
            if s.iter().any(|x| x.rule.is_some()) {
                " Below, each segment's rule (segment_rules): precision is the share of the customers \
                 meeting it who are in the segment, coverage the share of the segment meeting it."
            } else {
                ""
            },
        ),
        svg: charts::segment_sizes(s)?,
        extra: s.iter().any(|x| x.rule.is_some() || !x.mostly.is_empty()).then(|| rules_table(s)),
    }))
}

/// Each segment's rule with its precision and coverage, as `segment_rules` publishes them, and
/// the most common value of each profiled categorical column (`segment_summary`'s `top_*`).
fn rules_table(s: &[SegmentSize]) -> Markup {
    let pct = |v: f64| if v.is_finite() { format!("{:.0} %", 100.0 * v) } else { "–".into() };
    let mostly = s.iter().any(|x| !x.mostly.is_empty());
    html! {
        table.num.rules {
            thead { tr { th { "Segment" } th { "Rule (a CRM filter)" } th { "Precision" } th { "Coverage" } @if mostly { th { "Most common" } } } }
            tbody {
                @for x in s {
                    tr {
                        td { (x.name) }
                        @if let Some(r) = &x.rule {
                            td { code { (r.rule) } } td { (pct(r.precision)) } td { (pct(r.coverage)) }
                        } @else {
                            td { "–" } td { "–" } td { "–" }
                        }
                        @if mostly {
                            td { (x.mostly.iter().map(|(c, v, share)| format!("{c} {v} ({})", pct(*share))).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

fn profile_parts(p: Option<&ProfileHeatmap>) -> Result<Option<Parts>, ReportError> {
    let Some(p) = p.filter(|p| !p.features.is_empty() && !p.segments.is_empty()) else {
        return Ok(None);
    };
    let (svg, zmax) = charts::profile_heatmap(p)?;
    Ok(Some(Parts {
        caption: format!(
            "Mean z-score of each feature per segment (0 = the mean over all customers; red above, \
             blue below); the colour saturates at ±{zmax}, the printed values do not."
        ),
        svg,
        extra: None,
    }))
}

fn clv_parts(c: Option<&[SegmentValues]>) -> Result<Option<Parts>, ReportError> {
    let Some(c) = c.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let stats: Vec<Option<BoxStats>> = c.iter().map(|s| box_stats(&s.values)).collect();
    let (svg, log) = charts::clv_boxes(c, &stats)?;
    // The exact numbers behind the boxes, so they can be read without guessing from the axis.
    let table = html! {
        table.num {
            tr {
                th { "segment" } th { "customers" } th { "p5" } th { "Q1" }
                th { "median" } th { "Q3" } th { "p95" } th { "mean" }
            }
            @for (seg, st) in c.iter().zip(&stats) {
                tr {
                    td { (seg.name) }
                    @match st {
                        Some(b) => {
                            td { (fmt_count(b.n as u64)) }
                            @for v in [b.p5, b.q1, b.median, b.q3, b.p95, b.mean] {
                                td { (fmt_value(v)) }
                            }
                        }
                        None => { td { "0" } td colspan="6" { "no finite values" } }
                    }
                }
            }
        }
    };
    Ok(Some(Parts {
        caption: format!(
            "Distribution of customer CLV per segment{}. Box: first to third quartile, line: median, \
             dot: mean; whiskers: 5th to 95th percentile (values beyond them are not drawn).",
            if log { ", on a log scale" } else { "" }
        ),
        svg,
        extra: Some(table),
    }))
}

/// `customer_actions` per action key: a table, no chart.
fn action_parts(a: Option<&[ActionTotals]>) -> Option<Parts> {
    let a = a.filter(|a| !a.is_empty())?;
    let (contact, cost, value) = a.iter().fold((0u64, 0.0, 0.0), |(n, c, v), x| (n.saturating_add(x.contact), c + x.cost, v + x.expected_value));
    let table = html! {
        table.num.rules {
            tr {
                th { "action key" } th { "recommended action" } th { "customers" } th { "to contact" }
                th { "cost" } th { "net expected value" }
            }
            @for x in a {
                tr {
                    td { (x.key) } td { (x.action) } td { (fmt_count(x.customers)) } td { (fmt_count(x.contact)) }
                    td { (fmt_value(x.cost)) } td { (fmt_value(x.expected_value)) }
                }
            }
        }
    };
    Some(Parts {
        caption: format!(
            "Each customer's recommended action (customer_actions) is worth P(alive) × response × margin × \
             expected order value − cost per contact. Contacting the {} customers for whom that is above zero \
             costs {} and is expected to bring {} more than it costs; a campaign takes them in priority order.",
            fmt_count(contact),
            fmt_value(cost),
            fmt_value(value),
        ),
        svg: String::new(),
        extra: Some(table),
    })
}

fn p_alive_parts(p: Option<&PAliveMatrix>) -> Result<Option<Parts>, ReportError> {
    let Some(p) = p.filter(|p| !p.frequency.is_empty() && !p.recency.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(Parts {
        caption: format!(
            "Probability that a customer is still active, given the number of repeat purchases \
             (frequency) and the age at the last purchase (recency), from the {} model. \
             Blank cells are impossible combinations.",
            p.model
        ),
        svg: charts::p_alive(p)?,
        extra: None,
    }))
}

fn tracking_parts(t: Option<&[TrackingPoint]>) -> Result<Option<Parts>, ReportError> {
    let Some(t) = t.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(Parts {
        caption: format!(
            "Repeat purchases after the calibration end, added up week by week: actual, and expected by the {} model \
             fitted on the calibration period (the same fit as the holdout check).",
            t[0].model
        ),
        svg: charts::tracking(t)?,
        extra: None,
    }))
}

fn holdout_parts(h: Option<&[HoldoutBucket]>) -> Result<Option<Parts>, ReportError> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(Parts {
        caption: "Purchases in the holdout period, actual against predicted by the model fitted on \
                  the calibration period, for each bucket of calibration-period purchases."
            .to_string(),
        svg: charts::holdout(h)?,
        extra: None,
    }))
}

const CSS: &str = "\
body{margin:0;background:#f6f7f9;color:#1d2430;font:14px/1.45 sans-serif}\
main{max-width:980px;margin:0 auto;padding:24px 32px 48px}\
h1{font-size:24px;margin:8px 0 20px}\
h2{font-size:18px;margin:0 0 4px}\
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:16px 20px;margin:0 0 20px}\
p.cap{margin:0 0 10px;color:#4a5463}\
p.na{margin:0;color:#7a8494;font-style:italic}\
figure{margin:0}\
svg{display:block;max-width:100%;height:auto}\
dl.kv{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:4px 16px;margin:8px 0 0}\
dl.kv dt{color:#4a5463}\
dl.kv dd{margin:0;font-weight:600;overflow-wrap:anywhere}\
table.num{border-collapse:collapse;margin-top:12px;font-size:13px}\
table.num th,table.num td{padding:3px 10px;border-bottom:1px solid #e6e9ee;text-align:right}\
table.num th:first-child,table.num td:first-child{text-align:left}\
table.rules th:nth-child(2),table.rules td:nth-child(2){text-align:left}\
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::KRow;

    fn full() -> ReportData {
        let names = ["A<b>&\"c'", "plain"];
        ReportData {
            title: "t".into(),
            key_numbers: vec![("rows".into(), "10".into())],
            k_selection: Some(KSelection {
                rows: (2..6).map(|k| KRow { k, inertia: 100.0 / k as f64, silhouette: 0.1 * k as f64, stability: 1.0 - 0.1 * k as f64 }).collect(),
                chosen_k: 3,
            }),
            segments: Some(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| SegmentSize { id: i as i64, name: n.to_string(), customers: 5, rule: None, mostly: Vec::new() })
                    .collect(),
            ),
            profile: Some(ProfileHeatmap {
                features: vec!["f1".into(), "f2".into()],
                segments: names.map(String::from).to_vec(),
                z: vec![vec![1.0, -1.0], vec![0.5, 2.5]],
            }),
            clv_by_segment: Some(
                names.iter().map(|n| SegmentValues { name: n.to_string(), values: vec![1.0, 2.0, 3.0] }).collect(),
            ),
            p_alive: Some(PAliveMatrix {
                frequency: vec![0.0, 1.0],
                recency: vec![0.0, 1.0, 2.0],
                p: vec![vec![1.0, 1.0, 1.0], vec![f64::NAN, 0.2, 0.9]],
                time_unit: "days".into(),
                model: "BG/NBD".into(),
            }),
            holdout: Some(vec![HoldoutBucket { label: "0".into(), actual: 0.1, predicted: 0.2 }]),
            holdout_tracking: Some(vec![
                TrackingPoint { days: 7, actual: 3.0, expected: 2.5, model: "BG/NBD" },
                TrackingPoint { days: 10, actual: 4.0, expected: 4.5, model: "BG/NBD" },
            ]),
            actions: Some(vec![ActionTotals {
                key: "at_risk".into(),
                action: "call <them>".into(),
                customers: 10,
                contact: 4,
                cost: 20.0,
                expected_value: 12.5,
            }]),
        }
    }

    fn not_run(html: &str) -> usize {
        html.matches("Not run in this job.").count()
    }

    #[test]
    fn one_svg_per_drawn_chart() {
        let html = render_html(&full()).unwrap();
        assert_eq!(html.matches("<svg").count(), 7);
        assert_eq!(not_run(&html), 0);

        let partial = ReportData { profile: None, p_alive: None, ..full() };
        let html = render_html(&partial).unwrap();
        assert_eq!(html.matches("<svg").count(), 5);
        assert_eq!(not_run(&html), 2);
    }

    #[test]
    fn text_is_escaped_once_and_drawn_as_svg_text() {
        let data = ReportData {
            title: "<script>alert('x')</script> & co".into(),
            key_numbers: vec![("a<b".into(), "\"q\" & 'p'".into())],
            ..full()
        };
        let html = render_html(&data).unwrap();
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        // maud leaves `'` as is: safe in element content and in its double-quoted attributes.
        assert!(html.contains("<h1>&lt;script&gt;alert('x')&lt;/script&gt; &amp; co</h1>"));
        assert!(html.contains("<dt>a&lt;b</dt><dd>&quot;q&quot; &amp; 'p'</dd>"));
        // plotters escapes SVG text itself; the names must not be escaped twice.
        assert!(html.contains(">\nA&lt;b&gt;&amp;&quot;c&apos;\n</text>"));
        assert!(!html.contains("&amp;lt;"));
        assert!(html.contains("<td>call &lt;them&gt;</td>"));
    }

    #[test]
    fn page_needs_no_network() {
        let html = render_html(&full()).unwrap();
        for needle in ["http://", "https://", "src=", "url(", "@import", "<script", "<link"] {
            assert!(!html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn missing_or_empty_sections_say_not_run() {
        let html = render_html(&ReportData::default()).unwrap();
        assert_eq!(html.matches("<svg").count(), 0);
        assert_eq!(not_run(&html), 8);

        let empty = ReportData {
            k_selection: Some(KSelection { rows: vec![], chosen_k: 3 }),
            segments: Some(vec![]),
            profile: Some(ProfileHeatmap { features: vec![], segments: vec!["s".into()], z: vec![vec![]] }),
            clv_by_segment: Some(vec![]),
            p_alive: Some(PAliveMatrix { frequency: vec![], recency: vec![], p: vec![], time_unit: String::new(), model: String::new() }),
            holdout: Some(vec![]),
            holdout_tracking: Some(vec![]),
            actions: Some(vec![]),
            ..ReportData::default()
        };
        assert_eq!(not_run(&render_html(&empty).unwrap()), 8);
    }

    #[test]
    fn degenerate_numbers_still_draw() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let data = ReportData {
            k_selection: Some(KSelection { rows: vec![KRow { k: 4, inertia: nan, silhouette: inf, stability: nan }], chosen_k: 9 }),
            segments: Some(vec![SegmentSize { id: 7, name: String::new(), customers: 0, rule: None, mostly: Vec::new() }]),
            profile: Some(ProfileHeatmap {
                features: vec!["a very long feature name that will not fit under its column".into(); 12],
                segments: vec!["only".into()],
                z: vec![vec![nan, inf, -inf, 0.0, 1e300, -1e-300, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
            }),
            clv_by_segment: Some(vec![
                SegmentValues { name: "flat".into(), values: vec![7.0; 5] },
                SegmentValues { name: "none".into(), values: vec![nan, inf] },
                SegmentValues { name: "empty".into(), values: vec![] },
            ]),
            p_alive: Some(PAliveMatrix {
                frequency: vec![3.0],
                recency: vec![5.0],
                p: vec![vec![nan]],
                time_unit: "weeks".into(),
                model: "BG/NBD".into(),
            }),
            holdout: Some(vec![HoldoutBucket { label: "7+".into(), actual: nan, predicted: -inf }]),
            holdout_tracking: Some(vec![TrackingPoint { days: 0, actual: nan, expected: inf, model: "BG/NBD" }]),
            ..ReportData::default()
        };
        let html = render_html(&data).unwrap();
        assert_eq!(html.matches("<svg").count(), 7);
        assert!(html.contains("segment 7"));
        assert!(html.contains("no finite values"));
    }

    #[test]
    fn extreme_inputs_return_rather_than_panic() {
        let big = f64::MAX;
        let many: Vec<String> = (0..60).map(|i| format!("segment number {i} with a rather long name")).collect();
        let data = ReportData {
            k_selection: Some(KSelection {
                rows: vec![
                    KRow { k: 2, inertia: big, silhouette: -big, stability: big },
                    KRow { k: 3, inertia: -big, silhouette: big, stability: -big },
                ],
                chosen_k: 1_000_000,
            }),
            segments: Some(many.iter().map(|n| SegmentSize { id: 0, name: n.clone(), customers: u64::MAX, rule: None, mostly: Vec::new() }).collect()),
            profile: Some(ProfileHeatmap {
                features: vec!["f".into()],
                segments: many.clone(),
                z: vec![vec![1.0]; many.len()],
            }),
            clv_by_segment: Some(vec![SegmentValues { name: "x".into(), values: vec![-big, big, 0.0] }]),
            p_alive: Some(PAliveMatrix {
                frequency: vec![-big / 4.0, big / 4.0],
                recency: vec![1e-300, 2e-300],
                p: vec![vec![2.0, -1.0], vec![0.5, f64::NAN]],
                time_unit: "<days>".into(),
                model: "<BG/BB>".into(),
            }),
            holdout: Some(vec![HoldoutBucket { label: "x".into(), actual: big, predicted: -big }]),
            holdout_tracking: Some(vec![TrackingPoint { days: u32::MAX, actual: big, expected: -big, model: "<BG/BB>" }]),
            ..ReportData::default()
        };
        // Drawn badly, but drawn: no panic, no hang (plotters' own f64 tick search never ends on
        // an infinite range, hence our own ticks on every axis).
        let html = render_html(&data).unwrap();
        assert_eq!(html.matches("<svg").count(), 7);
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render_html(&full()).unwrap(), render_html(&full()).unwrap());
    }

    #[test]
    fn p_alive_rows_must_match_the_grid() {
        let mut data = ReportData { p_alive: full().p_alive, ..ReportData::default() };
        data.p_alive.as_mut().unwrap().p[1].pop();
        assert_eq!(
            render_html(&data).unwrap_err().to_string(),
            "report chart 'p_alive': p[1] has 2 values for 3 recency values"
        );
    }

    #[test]
    fn p_alive_grid_must_increase() {
        let mut data = ReportData { p_alive: full().p_alive, ..ReportData::default() };
        data.p_alive.as_mut().unwrap().recency = vec![0.0, 2.0, 2.0];
        assert_eq!(
            render_html(&data).unwrap_err().to_string(),
            "report chart 'p_alive': recency[2] = 2 is not above recency[1] = 2; the grid must increase"
        );
    }

    #[test]
    fn profile_rows_must_match_features() {
        let mut data = ReportData { profile: full().profile, ..ReportData::default() };
        data.profile.as_mut().unwrap().z[0].push(0.0);
        assert_eq!(
            render_html(&data).unwrap_err().to_string(),
            "report chart 'profile': z[0] has 3 values for 2 features"
        );
    }
}

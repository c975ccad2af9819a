//! `customer_actions`: every customer's recommended action and its expected value, checked row
//! by row against DuckDB computing the README's ranking rule from the published segments and
//! CLV, the job's `[actions]` and the README's table of shipped defaults.

use crate::common::*;

/// `(key, text, cost, response)` from the README's table of shipped actions: the documented
/// defaults are the ones the job runs with.
fn readme_defaults() -> Vec<(String, String, f64, f64)> {
    let readme = std::fs::read_to_string(std::path::Path::new(ROOT).join("README.md")).unwrap();
    let start = readme.find("| key | action | cost | response |").expect("the README's actions table");
    let rows: Vec<_> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells[1].to_string(), cells[2].parse().unwrap(), cells[3].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 8, "{rows:?}");
    rows
}

#[test]
fn customer_actions_follow_the_readme_ranking_rule_row_by_row() {
    let seg = retail_segmentation("4");
    let actions = "[actions]\nmargin = 0.25\nat_risk = \"personal win-back call\"\n\
                   [actions.champions]\ntext = \"VIP evening\"\ncost = 4\nresponse = 0.3\n\
                   [actions.silent]\nresponse = 0.12\n";
    let j = JobDir::retail(&format!(
        "{seg}\n[rfm]\nview = \"customer_rfm\"\n\n[clv]\nview = \"customer_summary\"\nid = \"customer_id\"\nmargin = 0.3\n\n{actions}\n[output]\nroot = \"out\"\n"
    ));
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);

    // The job's settings over the README's defaults.
    let keys: Vec<String> = readme_defaults()
        .into_iter()
        .map(|(key, text, cost, response)| {
            let (text, cost, response) = match key.as_str() {
                "champions" => ("VIP evening".to_string(), 4.0, 0.3),
                "at_risk" => ("personal win-back call".to_string(), cost, response),
                "silent" => (text, cost, 0.12),
                _ => (text, cost, response),
            };
            format!("('{key}', '{}', {cost:?}::DOUBLE, {response:?}::DOUBLE)", text.replace('\'', "''"))
        })
        .collect();
    let key_of = "CASE WHEN lifecycle_stage = 'churned' THEN 'churned' \
                  WHEN lifecycle_stage = 'silent' AND value_tier = 'high' THEN 'at_risk' \
                  WHEN lifecycle_stage = 'silent' THEN 'silent' WHEN lifecycle_stage = 'new' THEN 'new' \
                  WHEN value_tier = 'high' THEN 'champions' WHEN value_tier = 'medium' THEN 'loyal' ELSE 'low_value' END";
    let theirs = duckdb(&format!(
        "WITH k(key, text, cost, response) AS (VALUES {keys}), \
         e AS (SELECT s.customer_id, k.key, k.text, c.p_alive * k.response * 0.25 * c.expected_avg_value - k.cost AS ev, \
                 s.segment_id, s.segment_name, s.lifecycle_stage, s.value_tier, c.p_alive, c.expected_avg_value, k.cost, k.response \
               FROM read_parquet('{segments}') s JOIN k ON k.key = ({key_of}) \
               LEFT JOIN read_parquet('{clv}') c USING (customer_id)) \
         SELECT customer_id, row_number() OVER (ORDER BY ev DESC NULLS LAST, customer_id), key, text, ev, coalesce(ev > 0, false), \
                segment_id, segment_name, lifecycle_stage, value_tier, p_alive, expected_avg_value, cost, response \
         FROM e ORDER BY 2",
        keys = keys.join(", "),
        segments = partition_glob(&j.out(), "customer_segments", "2025-12-31"),
        clv = partition_glob(&j.out(), "customer_clv", "2025-12-31"),
    ));
    // Read in file order: the file itself is in priority order, as a CRM export takes it.
    let ours = duckdb(&format!(
        "SELECT * EXCLUDE (run_date) FROM read_parquet('{}')",
        partition_glob(&j.out(), "customer_actions", "2025-12-31")
    ));
    let customers = duckdb(&format!("SELECT count(*) FROM read_parquet('{}')", partition_glob(&j.out(), "customer_segments", "2025-12-31")));
    assert_eq!(ours.len() as i64, customers[0][0].as_i64().unwrap(), "one row per customer");
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) if !x.is_nan() => assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "column {i}: {a:?} vs {b:?}"),
                _ => assert_eq!(x, y, "column {i}: {a:?} vs {b:?}"),
            }
        }
    }
    // The rule has something to rank: some contacts pay, some do not, and several actions are chosen.
    let contact = ours.iter().filter(|r| r[5].as_bool() == Some(true)).count();
    assert!(contact > 0 && contact < ours.len(), "{contact} of {}", ours.len());
    let mut chosen: Vec<&str> = ours.iter().map(|r| r[2].as_str().unwrap()).collect();
    chosen.sort();
    chosen.dedup();
    assert!(chosen.len() >= 5, "{chosen:?}");
}

//! Comparing runs: the text stored in a scenario's snapshot, and a readable diff naming the
//! scenario, the language and pass, and the step where two runs first part ways.

use serde_json::{json, Value};
use similar::TextDiff;

use crate::runner::RunReport;

/// What a scenario's snapshot holds: the transcript and the final state, as YAML.
pub fn snapshot_text(report: &RunReport) -> String {
    let transcript: Vec<&Value> = report.transcript.iter().map(|entry| &entry.value).collect();
    let mut document = json!({"transcript": transcript, "finalState": report.final_state});
    if let Some(error) = &report.load_error {
        document["loadError"] = json!(error);
    }
    serde_saphyr::to_string(&document).unwrap_or_else(|e| format!("unrenderable report: {e}"))
}

/// `None` when `other` made the same calls and left the same state as `reference`; otherwise a
/// report of the first difference and a unified diff.
pub fn compare(reference: &RunReport, other: &RunReport) -> Option<String> {
    let (expected, actual) = (snapshot_text(reference), snapshot_text(other));
    if expected == actual {
        return None;
    }
    let first = reference
        .transcript
        .iter()
        .zip(&other.transcript)
        .position(|(a, b)| a.value != b.value)
        .or_else(|| {
            (reference.transcript.len() != other.transcript.len())
                .then(|| reference.transcript.len().min(other.transcript.len()))
        });
    let place = match first {
        Some(index) => {
            let step = other
                .transcript
                .get(index)
                .or_else(|| reference.transcript.get(index))
                .map(|entry| entry.step);
            let label = step
                .and_then(|step| other.step_labels.get(step))
                .cloned()
                .unwrap_or_else(|| "the end".into());
            format!(
                "transcript entry {} differs, made during {label}",
                index + 1
            )
        }
        None => "the final state differs".to_owned(),
    };
    let diff = TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(4)
        .header(
            &format!("{} ({})", reference.scenario, reference.who()),
            &format!("{} ({})", other.scenario, other.who()),
        )
        .to_string();
    Some(format!(
        "scenario {}: {} differs from {}: {place}\n{diff}",
        other.scenario,
        other.who(),
        reference.who()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Pass;
    use crate::transcript::Entry;

    fn report(language: &'static str, entries: &[(usize, Value)]) -> RunReport {
        RunReport {
            scenario: "demo".into(),
            language,
            pass: Pass::NoSwap,
            step_labels: vec!["step 1 (apply A a)".into(), "step 2 (delete A a)".into()],
            transcript: entries
                .iter()
                .map(|(step, value)| Entry {
                    step: *step,
                    value: value.clone(),
                })
                .collect(),
            final_state: Vec::new(),
            load_error: None,
            failure: None,
        }
    }

    #[test]
    fn a_difference_names_language_pass_and_step_and_shows_the_lines() {
        let rust = report(
            "rust",
            &[(0, json!({"x": 1})), (1, json!({"status": {"ready": 0}}))],
        );
        let go = report("go", &[(0, json!({"x": 1})), (1, json!({"status": {}}))]);
        assert_eq!(compare(&rust, &rust.clone()), None);
        let difference = compare(&rust, &go).expect("a difference");
        assert!(
            difference.starts_with(
                "scenario demo: go, no swap differs from rust, no swap: transcript entry 2 differs, made during step 2 (delete A a)"
            ),
            "{difference}"
        );
        assert!(
            difference
                .lines()
                .any(|line| line.starts_with('-') && line.contains("ready: 0")),
            "{difference}"
        );
    }
}

//! The settings of `wasm-operator run`, from a YAML file and command-line flags (flags win), and
//! the human units they use (`5s`, `250ms`, `64Mi`).
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::kube::watch_scope::WatchScope;

/// The YAML config file. Every field is optional; paths are relative to the file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    pub kubeconfig: Option<PathBuf>,
    pub metrics_addr: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub call_deadline: Option<String>,
    pub memory_limit: Option<String>,
    pub backoff_base: Option<String>,
    pub backoff_max: Option<String>,
    pub shutdown_deadline: Option<String>,
    pub http_timeout: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub swap_after: Option<String>,
    pub memory_budget: Option<String>,
    pub watch_scope: Option<String>,
    pub pre_wake: Option<String>,
    /// The admin's egress bounds (`--egress-allow-prefix`, `--egress-allow-network`).
    #[serde(default)]
    pub egress_allow_prefixes: Vec<String>,
    #[serde(default)]
    pub egress_allow_networks: Vec<String>,
    #[serde(default)]
    pub operators: Vec<OperatorEntry>,
}

/// One operator in the config file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorEntry {
    pub name: String,
    /// Path of the `.wasm` file.
    pub module: PathBuf,
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Handed to the operator's init as `config`.
    #[serde(default)]
    pub config: Option<Value>,
    /// Overrides the host-wide value for this operator.
    pub call_deadline: Option<String>,
    pub memory_limit: Option<String>,
    pub swap_after: Option<String>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let mut file: ConfigFile = serde_saphyr::from_str(&text).map_err(|error| {
            format!(
                "{} is not a valid run configuration: {error}",
                path.display()
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let relative_to_file = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        file.kubeconfig.as_mut().map(relative_to_file);
        file.cache_dir.as_mut().map(relative_to_file);
        for operator in &mut file.operators {
            relative_to_file(&mut operator.module);
        }
        Ok(file)
    }
}

/// Parses `NAME=VALUE` flags such as `--operator web=web.wasm`.
pub fn split_assignment<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok((name, value)),
        _ => Err(format!("{flag} expects NAME=VALUE, got {text:?}")),
    }
}

/// The longest duration any setting can take (a year): larger values are saturated to it, so
/// `Instant + duration` and deadline arithmetic never overflow, whatever a spec says.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest size any setting can take (1 PiB): larger values are saturated to it.
pub const MAX_BYTES: u64 = 1 << 50;

/// A run of ASCII digits as a number, saturated at `u64::MAX` (digits only: checked by callers).
fn saturating_number(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |number, digit| {
        number
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    })
}

/// `250ms`, `5s`, `2m`, `1h`, or a combination such as `1m30s`. Saturates at [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration: write e.g. 250ms, 5s, 2m or 1h");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let number = saturating_number(&rest[..digits]);
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            _ => return Err(invalid()),
        };
        total = total.saturating_add(unit).min(MAX_DURATION);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `duration` in the largest unit that writes it exactly (`90s`, `2m`, `1h`, `250ms`).
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0 => "0s".into(),
        _ if millis % 3_600_000 == 0 => format!("{}h", millis / 3_600_000),
        _ if millis % 60_000 == 0 => format!("{}m", millis / 60_000),
        _ if millis % 1_000 == 0 => format!("{}s", millis / 1_000),
        _ => format!("{millis}ms"),
    }
}

/// `bytes` in the largest binary unit that writes it exactly (`256Mi`, `1Gi`, `1000`).
pub fn format_bytes(bytes: u64) -> String {
    for (unit, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A swap period: a duration, or `never` (`None`).
pub fn parse_swap_after(text: &str) -> Result<Option<Duration>, String> {
    if text.trim() == "never" {
        return Ok(None);
    }
    parse_duration(text)
        .map(Some)
        .map_err(|error| format!("{error}, or never"))
}

/// `--watch-scope`: `cluster` (one cluster-wide watch per kind when allowed) or `namespace`.
pub fn parse_watch_scope(text: &str) -> Result<WatchScope, String> {
    match text.trim() {
        "cluster" => Ok(WatchScope::ClusterWideWhenAllowed),
        "namespace" => Ok(WatchScope::PerNamespace),
        other => Err(format!(
            "{other:?} is not a watch scope: write cluster (share one cluster-wide watch per kind \
             when the host may list and watch it everywhere) or namespace"
        )),
    }
}

/// Bytes as Kubernetes quantities: `64Mi`, `512Ki`, `1Gi`, `100M`, `1000000`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let invalid =
        || format!("{text:?} is not a size: write e.g. 64Mi, 512Ki, 1Gi or a number of bytes");
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(invalid());
    }
    let number = saturating_number(&text[..digits]);
    let factor: u64 = match &text[digits..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    let bytes = number.saturating_mul(factor).min(MAX_BYTES);
    Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
}

pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|error| {
        format!("{text:?} is not an address to listen on (e.g. 127.0.0.1:9100): {error}")
    })
}

/// Collects `--allow-http NAME=PREFIX` flags by operator name.
pub fn allow_http_by_operator(flags: &[String]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut by_operator: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for flag in flags {
        let (name, prefix) = split_assignment("--allow-http", flag)?;
        by_operator
            .entry(name.to_string())
            .or_default()
            .push(prefix.to_string());
    }
    Ok(by_operator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_saturate_instead_of_overflowing() {
        for absurd in [
            "99999999999999999h",
            "184467440737095516150000000000000000000h",
            "18446744073709551615s18446744073709551615s",
            "99999999999999999999999999999ms",
        ] {
            let parsed = parse_duration(absurd).unwrap();
            assert_eq!(parsed, MAX_DURATION, "{absurd}");
            // The host adds call deadlines to the current instant: that must not panic.
            let _ = std::time::Instant::now() + parsed;
        }
        assert_eq!(parse_duration("8760h").unwrap(), MAX_DURATION);
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn absurd_sizes_saturate_instead_of_overflowing() {
        for absurd in [
            "99999999999999999999Gi",
            "18446744073709551615Ti",
            "1".repeat(400).as_str(),
        ] {
            assert_eq!(parse_bytes(absurd).unwrap() as u64, MAX_BYTES, "{absurd}");
        }
        assert_eq!(parse_bytes("4Gi").unwrap(), 4 << 30);
        assert!(parse_bytes("4Ei").is_err());
    }

    #[test]
    fn sizes_and_durations_format_in_their_largest_exact_unit() {
        assert_eq!(format_bytes(256 << 20), "256Mi");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(MAX_DURATION), "8760h");
    }

    #[test]
    fn durations_accept_the_usual_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "5", "s", "5 s", "5sec", "-1s"] {
            assert!(parse_duration(bad).unwrap_err().contains("250ms"), "{bad}");
        }
    }

    #[test]
    fn sizes_accept_binary_and_decimal_suffixes() {
        assert_eq!(parse_bytes("64Mi").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("512Ki").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100M").unwrap(), 100_000_000);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        for bad in ["", "Mi", "64MB", "1.5Gi"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assignments_need_a_name_and_a_value() {
        assert_eq!(
            split_assignment("--operator", "web=a=b.wasm").unwrap(),
            ("web", "a=b.wasm")
        );
        assert!(split_assignment("--operator", "web.wasm")
            .unwrap_err()
            .contains("NAME=VALUE"));
        assert!(split_assignment("--operator", "=x").is_err());
    }

    #[test]
    fn config_file_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.yaml");
        std::fs::write(
            &path,
            "kubeconfig: kube.yaml\ncallDeadline: 2s\noperators:\n  - name: web\n    module: ops/web.wasm\n    \
             allowHttp: [\"http://127.0.0.1:9090/\"]\n    config: {replicas: 2}\n",
        )
        .unwrap();
        let file = ConfigFile::read(&path).unwrap();
        assert_eq!(file.kubeconfig.unwrap(), dir.path().join("kube.yaml"));
        assert_eq!(file.operators[0].module, dir.path().join("ops/web.wasm"));
        assert_eq!(file.operators[0].config.as_ref().unwrap()["replicas"], 2);
    }

    #[test]
    fn unknown_config_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.yaml");
        std::fs::write(&path, "metricAddr: 1.2.3.4:5\n").unwrap();
        let error = ConfigFile::read(&path).unwrap_err();
        assert!(error.contains("metricAddr"), "{error}");
    }
}

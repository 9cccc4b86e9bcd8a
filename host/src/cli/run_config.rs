//! The settings of `wasm-operator run`, from a YAML file and command-line flags (flags win), and
//! the human units they use (`5s`, `250ms`, `64Mi`).
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

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
        let mut file: ConfigFile = serde_yaml::from_str(&text).map_err(|error| {
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

/// `250ms`, `5s`, `2m`, `1h`, or a combination such as `1m30s`.
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
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
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
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
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
    let number: u64 = text[..digits].parse().map_err(|_| invalid())?;
    let factor: u64 = match &text[digits..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    let bytes = number.checked_mul(factor).ok_or_else(invalid)?;
    usize::try_from(bytes).map_err(|_| invalid())
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

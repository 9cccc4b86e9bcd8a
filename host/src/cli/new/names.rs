//! The names a new project is made of, derived from the operator's name and its kind, and
//! checked before anything is written: the operator's name becomes a DNS label (the host's
//! operator name, the CRD's default group), a Cargo package or a Go module, so it must be valid
//! as all of them; the kind becomes a CRD, Rust types and Go types.
use super::Lang;

/// Everything the templates are filled in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The operator's name, a DNS-1123 label: `backup-runner`.
    pub name: String,
    /// The Rust crate's identifier, and the `.wasm` file's stem: `backup_runner`.
    pub crate_ident: String,
    /// The kind: `BackupRunner`.
    pub kind: String,
    /// The kind in lower case, the CRD's singular: `backuprunner`.
    pub singular: String,
    /// The CRD's plural: `backuprunners`.
    pub plural: String,
    /// The API group: `backup-runner.example.com`.
    pub group: String,
    /// The version: `v1alpha1`.
    pub version: String,
}

impl Names {
    /// Checks `name` and `kind` (`group/version/Kind`, or the default derived from `name`).
    pub fn new(name: &str, kind: Option<&str>, lang: Lang) -> Result<Names, String> {
        check_name(name, lang)?;
        let camel = camel_case(name);
        let default_kind;
        let kind = match kind {
            Some(kind) => kind,
            None => {
                default_kind = format!("{name}.example.com/v1alpha1/{camel}");
                &default_kind
            }
        };
        let (group, version, kind) = parse_kind(kind)?;
        check_kind_for_language(&kind, lang)?;
        let singular = kind.to_ascii_lowercase();
        Ok(Names {
            name: name.to_owned(),
            crate_ident: name.replace('-', "_"),
            plural: plural(&singular),
            singular,
            kind,
            group,
            version,
        })
    }

    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The CRD's name, `plural.group`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// The finalizer the operator holds its objects with: `group/cleanup`.
    pub fn finalizer(&self) -> String {
        format!("{}/cleanup", self.group)
    }

    /// The placeholders of the templates and their values.
    pub fn placeholders(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("crate_ident", self.crate_ident.clone()),
            ("kind", self.kind.clone()),
            ("singular", self.singular.clone()),
            ("plural", self.plural.clone()),
            ("group", self.group.clone()),
            ("version", self.version.clone()),
            ("api_version", self.api_version()),
            ("crd_name", self.crd_name()),
            ("finalizer", self.finalizer()),
        ]
    }
}

/// Names that would clash with the Rust template's own items (`use wasm_operator_sdk::prelude::*`,
/// the standard prelude) or with the crates it uses.
const RUST_RESERVED_KINDS: &[&str] = &[
    "Action",
    "Api",
    "Condition",
    "ConditionStatus",
    "Controller",
    "DeleteParams",
    "Error",
    "Event",
    "EventType",
    "InitContext",
    "ListParams",
    "Mapping",
    "Option",
    "Patch",
    "PatchParams",
    "Predicate",
    "Recorder",
    "Reporter",
    "Request",
    "Resource",
    "ResourceExt",
    "Result",
    "ResultExt",
    "Some",
    "String",
    "Vec",
    "WatchConfig",
    "CustomResource",
    "Serialize",
    "Deserialize",
    "AbsentReason",
    "IgnoredAny",
];

/// Cargo refuses these as package names (Rust keywords and the standard crates).
const RUST_RESERVED_NAMES: &[&str] = &[
    "test",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "as",
    "async",
    "await",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "yield",
    "abstract",
    "become",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "gen",
];

/// A DNS-1123 label that starts with a letter (a DNS-1035 label): valid as an operator name, a
/// label of the default group, a Cargo package (which may not start with a digit) and a Go
/// module path.
fn check_name(name: &str, lang: Lang) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > 63 {
        Some(format!(
            "it has {} characters, at most 63 are allowed",
            name.len()
        ))
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!(
            "{c:?} is not allowed: use lower-case letters, digits and '-'"
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lower-case letter".to_owned())
    } else if name.ends_with('-') {
        Some("it must end with a letter or digit".to_owned())
    } else if lang == Lang::Rust && RUST_RESERVED_NAMES.contains(&name) {
        Some("it is reserved in Rust (a keyword or a standard crate)".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "invalid operator name {name:?}: {problem} (a DNS-1123 label starting with a letter, e.g. backup-runner)"
        )),
        None => Ok(()),
    }
}

/// `group/version/Kind`: a group with at least one dot (the API server requires it of CRDs), a
/// version such as `v1alpha1`, and a CamelCase kind.
fn parse_kind(text: &str) -> Result<(String, String, String), String> {
    let invalid = |problem: String| {
        Err(format!(
            "invalid --kind {text:?}: {problem} (expected group/version/Kind, e.g. example.com/v1alpha1/Widget)"
        ))
    };
    let parts: Vec<&str> = text.split('/').collect();
    let [group, version, kind] = parts[..] else {
        return invalid(format!(
            "it has {} part(s) separated by '/', not 3",
            parts.len()
        ));
    };
    if !group.contains('.') {
        return invalid(format!(
            "group {group:?} must be a domain with at least one dot"
        ));
    }
    if group.len() > 253 || !group.split('.').all(is_dns_label) {
        return invalid(format!(
            "group {group:?} is not a DNS subdomain (lower-case letters, digits, '-' and '.')"
        ));
    }
    if !is_dns_label(version) || !version.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid(format!(
            "version {version:?} must be a lower-case label starting with a letter, e.g. v1 or v1alpha1"
        ));
    }
    let kind_ok = kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric())
        && kind.len() <= 62;
    if !kind_ok {
        return invalid(format!(
            "kind {kind:?} must be CamelCase: an upper-case letter, then letters and digits"
        ));
    }
    Ok((group.to_owned(), version.to_owned(), kind.to_owned()))
}

fn check_kind_for_language(kind: &str, lang: Lang) -> Result<(), String> {
    if lang == Lang::Rust && RUST_RESERVED_KINDS.contains(&kind) {
        return Err(format!(
            "invalid --kind: {kind:?} would clash with a name the Rust project uses; choose another kind"
        ));
    }
    Ok(())
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// `backup-runner` -> `BackupRunner`.
fn camel_case(name: &str) -> String {
    name.split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// English plural of a lower-case kind, by the rules Kubernetes tooling uses for most kinds:
/// `policy` -> `policies`, `box` -> `boxes`, `widget` -> `widgets`.
fn plural(singular: &str) -> String {
    let consonant_y = singular.ends_with('y')
        && !singular
            .chars()
            .rev()
            .nth(1)
            .is_some_and(|c| "aeiou".contains(c));
    if consonant_y {
        format!("{}ies", &singular[..singular.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| singular.ends_with(end))
    {
        format!("{singular}es")
    } else {
        format!("{singular}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_kind_comes_from_the_name() {
        let names = Names::new("backup-runner", None, Lang::Go).unwrap();
        assert_eq!(names.kind, "BackupRunner");
        assert_eq!(names.group, "backup-runner.example.com");
        assert_eq!(names.version, "v1alpha1");
        assert_eq!(names.plural, "backuprunners");
        assert_eq!(names.crate_ident, "backup_runner");
        assert_eq!(names.crd_name(), "backuprunners.backup-runner.example.com");
        assert_eq!(names.finalizer(), "backup-runner.example.com/cleanup");
    }

    #[test]
    fn an_explicit_kind_is_split() {
        let names = Names::new("op", Some("example.com/v1/Policy"), Lang::Rust).unwrap();
        assert_eq!(
            (
                names.group.as_str(),
                names.version.as_str(),
                names.kind.as_str()
            ),
            ("example.com", "v1", "Policy")
        );
        assert_eq!(names.plural, "policies");
        assert_eq!(plural("gateway"), "gateways");
        assert_eq!(plural("mailbox"), "mailboxes");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (name, reason) in [
            ("", "empty"),
            ("Backup", "'B' is not allowed"),
            ("back_up", "'_' is not allowed"),
            ("1backup", "start with a lower-case letter"),
            ("backup-", "end with a letter or digit"),
            (&"a".repeat(64), "at most 63"),
        ] {
            let error = Names::new(name, None, Lang::Go).unwrap_err();
            assert!(error.contains(reason), "{name:?}: {error}");
            assert!(error.contains("DNS-1123 label"), "{error}");
        }
        let error = Names::new("test", None, Lang::Rust).unwrap_err();
        assert!(error.contains("reserved in Rust"), "{error}");
        assert!(Names::new("test", None, Lang::Go).is_ok());
    }

    #[test]
    fn bad_kinds_are_refused_with_the_reason() {
        for (kind, reason) in [
            ("Widget", "not 3"),
            ("example.com/v1/Widget/x", "not 3"),
            ("example/v1/Widget", "at least one dot"),
            ("Example.com/v1/Widget", "not a DNS subdomain"),
            ("example.com/V1/Widget", "version"),
            ("example.com/1/Widget", "version"),
            ("example.com/v1/widget", "CamelCase"),
            ("example.com/v1/Wid-get", "CamelCase"),
        ] {
            let error = Names::new("op", Some(kind), Lang::Go).unwrap_err();
            assert!(error.contains(reason), "{kind}: {error}");
            assert!(error.contains("expected group/version/Kind"), "{error}");
        }
        let error = Names::new("op", Some("example.com/v1/Request"), Lang::Rust).unwrap_err();
        assert!(error.contains("clash"), "{error}");
    }
}

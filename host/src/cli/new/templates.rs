//! The files of a new project: templates kept as files under `templates/` (so they read, and
//! diff, like the files they become), compiled into the binary, and filled in by plain
//! substitution of `{{placeholder}}`s. There is no logic in templates: anything that varies by
//! more than a name is a separate file.
use super::Lang;

/// One file of a project: where it goes, and its template.
pub struct Template {
    /// Relative to the project's directory.
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!("templates/", $file)),
        }
    };
}

const RUST: &[Template] = &[
    template!("Cargo.toml", "rust/Cargo.toml.tmpl"),
    template!("Makefile", "rust/Makefile.tmpl"),
    template!("README.md", "rust/README.md.tmpl"),
    template!(".gitignore", "rust/gitignore.tmpl"),
    template!("src/lib.rs", "rust/src/lib.rs.tmpl"),
    template!("src/types.rs", "rust/src/types.rs.tmpl"),
    template!("src/tests.rs", "rust/src/tests.rs.tmpl"),
    template!("crd.yaml", "shared/crd.yaml.tmpl"),
    template!("sample.yaml", "shared/sample.yaml.tmpl"),
    template!("deploy.yaml", "shared/deploy.yaml.tmpl"),
];

const GO: &[Template] = &[
    template!("go.mod", "go/go.mod.tmpl"),
    template!("Makefile", "go/Makefile.tmpl"),
    template!("README.md", "go/README.md.tmpl"),
    template!(".gitignore", "go/gitignore.tmpl"),
    template!("main.go", "go/main.go.tmpl"),
    template!("types.go", "go/types.go.tmpl"),
    template!("reconcile.go", "go/reconcile.go.tmpl"),
    template!("reconcile_test.go", "go/reconcile_test.go.tmpl"),
    template!("crd.yaml", "shared/crd.yaml.tmpl"),
    template!("sample.yaml", "shared/sample.yaml.tmpl"),
    template!("deploy.yaml", "shared/deploy.yaml.tmpl"),
];

/// The files of a project in `lang`.
pub fn files(lang: Lang) -> &'static [Template] {
    match lang {
        Lang::Rust => RUST,
        Lang::Go => GO,
    }
}

/// `text` with every `{{key}}` replaced by its value. A placeholder without a value is an error
/// (a template naming something the command does not provide), never left in the output.
pub fn render(text: &str, values: &[(&str, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "unclosed placeholder at {:?}",
                &rest[start..].lines().next().unwrap_or_default()
            )
        })?;
        let key = &after[..end];
        let value = values
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value)
            .ok_or_else(|| format!("unknown placeholder {{{{{key}}}}}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::new::names::Names;

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_refused() {
        let values = [("kind", "Widget".to_owned())];
        assert_eq!(render("a {{kind}}s b", &values).unwrap(), "a Widgets b");
        assert!(render("{{other}}", &values)
            .unwrap_err()
            .contains("{{other}}"));
        assert!(render("{{kind", &values).unwrap_err().contains("unclosed"));
    }

    /// Every placeholder of every template has a value, and nothing like one is left over.
    #[test]
    fn every_template_renders() {
        for lang in [Lang::Rust, Lang::Go] {
            let names = Names::new("backup-runner", None, lang).unwrap();
            let mut values = names.placeholders();
            values.push(("sdk_rust_path", "/sdk-rust".to_owned()));
            values.push(("sdk_go_path", "/sdk-go".to_owned()));
            for template in files(lang) {
                let text = render(template.text, &values)
                    .unwrap_or_else(|e| panic!("{lang:?} {}: {e}", template.path));
                assert!(!text.contains("{{"), "{lang:?} {}", template.path);
            }
        }
    }
}

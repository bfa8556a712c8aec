//! `${NAME}` references in configuration values, resolved from the environment.
//!
//! This is the only place where ci-bridge reads environment variables for its settings.

use super::ConfigError;

/// Replaces every `${NAME}` in each string of the parsed TOML with the value of the
/// environment variable NAME. A missing variable is an error naming it and the key.
/// `$$` stands for a literal `$`.
pub fn expand(value: &mut toml::Value, key: &str) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(text) => *text = expand_str(text, key)?,
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                expand(item, &format!("{key}[{index}]"))?;
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                expand(item, &path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(text: &str, key: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| ConfigError::Invalid {
                key: key.to_owned(),
                reason: "unterminated ${...} reference".into(),
            })?;
            let name = &body[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    reason: format!("'{name}' is not an environment variable name"),
                });
            }
            let value = std::env::var(name).map_err(|_| ConfigError::MissingEnv {
                key: key.to_owned(),
                var: name.to_owned(),
            })?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_names_the_variable_and_the_key() {
        let mut value: toml::Value =
            toml::from_str("[gitlab]\ntoken = \"${CI_BRIDGE_TEST_SURELY_UNSET}\"").unwrap();
        let err = expand(&mut value, "").unwrap_err().to_string();
        assert!(err.contains("CI_BRIDGE_TEST_SURELY_UNSET"), "{err}");
        assert!(err.contains("gitlab.token"), "{err}");
    }

    #[test]
    fn text_without_references_and_escaped_dollars_stay_as_written() {
        assert_eq!(expand_str("a$$b$c", "k").unwrap(), "a$b$c");
        assert_eq!(expand_str("plain", "k").unwrap(), "plain");
    }
}

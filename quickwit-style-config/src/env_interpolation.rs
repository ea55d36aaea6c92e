use crate::ConfigError;

/// Replaces `${VAR}` and `${VAR:-default}` with the environment's value, before the
/// document is parsed, so any value (ports, URIs, secrets) can come from the environment.
pub fn interpolate_env_vars(text: &str) -> Result<String, ConfigError> {
    interpolate_with(text, |name| std::env::var(name).ok())
}

fn interpolate_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        output.push_str(&rest[..start]);
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find('}') else {
            // An unterminated `${` is left as written: it is not ours to interpret.
            output.push_str(&rest[start..]);
            return Ok(output);
        };
        let expression = &after_open[..end];
        let (name, default) = match expression.split_once(":-") {
            Some((name, default)) => (name.trim(), Some(default)),
            None => (expression.trim(), None),
        };
        match (lookup(name), default) {
            (Some(value), _) => output.push_str(&value),
            (None, Some(default)) => output.push_str(default),
            (None, None) => return Err(ConfigError::MissingEnvVar(name.to_string())),
        }
        rest = &after_open[end + 1..];
    }
    output.push_str(rest);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "PORT").then(|| "9999".to_string())
    }

    #[test]
    fn substitutes_values_and_defaults() {
        let text = "port: ${PORT}\nhost: ${HOST:-127.0.0.1}\nempty: ${NOPE:-}";
        assert_eq!(
            interpolate_with(text, lookup).unwrap(),
            "port: 9999\nhost: 127.0.0.1\nempty: "
        );
    }

    #[test]
    fn missing_variable_without_default_is_an_error() {
        assert_eq!(
            interpolate_with("a: ${MISSING}", lookup).unwrap_err(),
            ConfigError::MissingEnvVar("MISSING".to_string())
        );
    }

    #[test]
    fn unterminated_expression_is_kept() {
        assert_eq!(interpolate_with("a: ${OOPS", lookup).unwrap(), "a: ${OOPS");
    }
}

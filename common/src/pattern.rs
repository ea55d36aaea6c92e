/// Whether `name` matches `pattern`, where `*` stands for any run of characters (index and
/// field patterns of the Elasticsearch API).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return pattern == name;
    };
    if parts.len() == 1 {
        return pattern == name;
    }
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(found) => rest = &rest[found + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("attr*", "attributes.region"));
        assert!(wildcard_match("*region", "attributes.region"));
        assert!(wildcard_match("a*s*n", "attributes.region"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(!wildcard_match("b*", "attributes"));
        assert!(wildcard_match("host", "host"));
        assert!(!wildcard_match("host", "hosts"));
    }
}

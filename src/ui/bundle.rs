//! Joins the UI's ES modules into one script, so the page needs no second round trip and
//! no build tool: each module becomes a function scope that returns its exports, and its
//! imports read them from the modules before it.
//!
//! The modules keep to what this reads, and anything else is an error, not a silent
//! miss: imports first, each `import { a, b as c } from "./path.js";` (one statement, may
//! span lines); exports only as `export function|async function|const|let|class name`
//! at the start of a line.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("{module}: {message}")]
    Module { module: String, message: String },
    #[error("the modules import each other in a cycle through {0}")]
    Cycle(String),
    #[error("no module `{0}`")]
    Missing(String),
    #[error("module `{0}` is embedded but nothing imports it")]
    Unused(String),
}

struct Import {
    /// `(exported name, local name)`.
    names: Vec<(String, String)>,
    from: String,
}

struct ParsedModule {
    imports: Vec<Import>,
    body: String,
    exports: Vec<String>,
}

fn module_error(module: &str, message: impl Into<String>) -> BundleError {
    BundleError::Module {
        module: module.to_string(),
        message: message.into(),
    }
}

/// `path` of an import `specifier` made in module `importer` (both relative to the
/// modules' root, `/`-separated).
fn resolve(importer: &str, specifier: &str) -> Option<String> {
    if !(specifier.starts_with("./") || specifier.starts_with("../")) {
        return None;
    }
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop();
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn parse_import(module: &str, statement: &str) -> Result<Import, BundleError> {
    let bad = || module_error(module, format!("unsupported import `{statement}`"));
    let rest = statement.strip_prefix("import").ok_or_else(bad)?.trim();
    let rest = rest.strip_prefix('{').ok_or_else(bad)?;
    let (list, rest) = rest.split_once('}').ok_or_else(bad)?;
    let rest = rest.trim().strip_prefix("from").ok_or_else(bad)?.trim();
    let rest = rest.strip_suffix(';').ok_or_else(bad)?.trim();
    let specifier = rest
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(bad)?;
    let from = resolve(module, specifier).ok_or_else(bad)?;
    let mut names = Vec::new();
    for item in list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (exported, local) = match item.split_once(" as ") {
            Some((exported, local)) => (exported.trim(), local.trim()),
            None => (item, item),
        };
        if !is_identifier(exported) || !is_identifier(local) {
            return Err(bad());
        }
        names.push((exported.to_string(), local.to_string()));
    }
    Ok(Import { names, from })
}

fn parse_module(module: &str, source: &str) -> Result<ParsedModule, BundleError> {
    let mut imports = Vec::new();
    let mut body = String::with_capacity(source.len());
    let mut exports = Vec::new();
    let mut pending_import: Option<String> = None;
    let mut in_header = true;
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(statement) = pending_import.as_mut() {
            statement.push(' ');
            statement.push_str(trimmed);
            if trimmed.ends_with(';') {
                imports.push(parse_import(module, statement)?);
                pending_import = None;
            }
            continue;
        }
        if trimmed.starts_with("import ") || trimmed.starts_with("import{") {
            if !in_header {
                return Err(module_error(module, "imports must come before any code"));
            }
            if trimmed.ends_with(';') {
                imports.push(parse_import(module, trimmed)?);
            } else {
                pending_import = Some(trimmed.to_string());
            }
            continue;
        }
        if in_header && !(trimmed.is_empty() || trimmed.starts_with("//")) {
            in_header = false;
        }
        if let Some(declaration) = line.strip_prefix("export ") {
            let name = [
                "async function* ",
                "async function ",
                "function* ",
                "function ",
                "const ",
                "let ",
                "class ",
            ]
            .iter()
            .find_map(|keyword| declaration.strip_prefix(keyword))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
                    .collect::<String>()
            })
            .filter(|name| is_identifier(name))
            .ok_or_else(|| module_error(module, format!("unsupported export `{}`", line.trim())))?;
            exports.push(name);
            body.push_str(declaration);
        } else {
            if trimmed.starts_with("export") {
                return Err(module_error(
                    module,
                    format!("unsupported export `{trimmed}`"),
                ));
            }
            body.push_str(line);
        }
        body.push('\n');
    }
    if pending_import.is_some() {
        return Err(module_error(module, "an import does not end with `;`"));
    }
    Ok(ParsedModule {
        imports,
        body,
        exports,
    })
}

fn scope_name(module: &str) -> String {
    let mut name = String::from("__quarry_");
    name.extend(module.trim_end_matches(".js").chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c
        } else {
            '_'
        }
    }));
    name
}

/// One script of `modules` (`(path, source)`, paths relative to the modules' root), with
/// `entry` last and every module before the modules that import it.
pub fn bundle(modules: &[(&str, &str)], entry: &str) -> Result<String, BundleError> {
    let mut parsed = BTreeMap::new();
    for (path, source) in modules {
        parsed.insert(path.to_string(), parse_module(path, source)?);
    }
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    let mut visiting = BTreeSet::new();
    visit(entry, &parsed, &mut visiting, &mut done, &mut order)?;
    if let Some(unused) = parsed.keys().find(|path| !done.contains(*path)) {
        return Err(BundleError::Unused(unused.clone()));
    }
    let mut script = String::new();
    for path in order {
        let module = &parsed[&path];
        script.push_str(&format!(
            "// {path}\nconst {} = (() => {{\n",
            scope_name(&path)
        ));
        for import in &module.imports {
            let exporter = &parsed[&import.from];
            let mut bindings = Vec::new();
            for (exported, local) in &import.names {
                if !exporter.exports.contains(exported) {
                    return Err(module_error(
                        &path,
                        format!(
                            "imports `{exported}`, which {} does not export",
                            import.from
                        ),
                    ));
                }
                bindings.push(if exported == local {
                    exported.clone()
                } else {
                    format!("{exported}: {local}")
                });
            }
            script.push_str(&format!(
                "const {{ {} }} = {};\n",
                bindings.join(", "),
                scope_name(&import.from)
            ));
        }
        script.push_str(&module.body);
        script.push_str(&format!(
            "return {{ {} }};\n}})();\n",
            module.exports.join(", ")
        ));
    }
    Ok(script)
}

fn visit(
    path: &str,
    parsed: &BTreeMap<String, ParsedModule>,
    visiting: &mut BTreeSet<String>,
    done: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<(), BundleError> {
    if done.contains(path) {
        return Ok(());
    }
    let module = parsed
        .get(path)
        .ok_or_else(|| BundleError::Missing(path.to_string()))?;
    if !visiting.insert(path.to_string()) {
        return Err(BundleError::Cycle(path.to_string()));
    }
    for import in &module.imports {
        visit(&import.from, parsed, visiting, done, order)?;
    }
    visiting.remove(path);
    done.insert(path.to_string());
    order.push(path.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_before_their_importers_and_exports_become_bindings() {
        let modules = [
            (
                "app.js",
                "// entry\nimport { twice } from \"./lib/math.js\";\nimport {\n  name as label,\n} from \"./lib/name.js\";\nconsole.log(twice(2), label);\n",
            ),
            ("lib/math.js", "import { name } from \"./name.js\";\nexport function twice(x) {\n  return x * 2;\n}\nexport const ONE = 1;\n"),
            ("lib/name.js", "export const name = \"quarry\";\n"),
        ];
        let script = bundle(&modules, "app.js").unwrap();
        let position = |needle: &str| script.find(needle).unwrap();
        assert!(position("// lib/name.js") < position("// lib/math.js"));
        assert!(position("// lib/math.js") < position("// app.js"));
        assert!(script.contains("const { name } = __quarry_lib_name;"));
        assert!(script.contains("const { name: label } = __quarry_lib_name;"));
        assert!(script.contains("function twice(x) {"));
        assert!(script.contains("return { twice, ONE };"));
        assert!(!script.contains("export "));
        assert!(!script.contains("import "));
    }

    #[test]
    fn what_the_bundler_cannot_read_is_an_error() {
        let check = |source: &str| bundle(&[("app.js", source)], "app.js");
        assert!(matches!(
            check("export default 1;\n"),
            Err(BundleError::Module { .. })
        ));
        assert!(matches!(
            check("export { a };\n"),
            Err(BundleError::Module { .. })
        ));
        assert!(matches!(
            check("import x from \"./x.js\";\n"),
            Err(BundleError::Module { .. })
        ));
        assert!(matches!(
            check("import { x } from \"lib\";\n"),
            Err(BundleError::Module { .. })
        ));
        assert!(matches!(
            check("const a = 1;\nimport { x } from \"./x.js\";\n"),
            Err(BundleError::Module { .. })
        ));
        assert_eq!(
            check("import { x } from \"./x.js\";\n"),
            Err(BundleError::Missing("x.js".to_string()))
        );
        let cycle = [
            ("app.js", "import { b } from \"./b.js\";\n"),
            (
                "b.js",
                "import { a } from \"./app.js\";\nexport const b = 1;\n",
            ),
        ];
        assert!(matches!(
            bundle(&cycle, "app.js"),
            Err(BundleError::Cycle(_))
        ));
        let unused = [("app.js", "1;\n"), ("b.js", "export const b = 1;\n")];
        assert_eq!(
            bundle(&unused, "app.js"),
            Err(BundleError::Unused("b.js".to_string()))
        );
        let missing_export = [
            ("app.js", "import { c } from \"./b.js\";\n"),
            ("b.js", "export const b = 1;\n"),
        ];
        assert!(matches!(
            bundle(&missing_export, "app.js"),
            Err(BundleError::Module { .. })
        ));
    }
}

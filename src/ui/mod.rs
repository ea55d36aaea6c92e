//! The web UI served at `/ui`: `ui/index.html` with `ui/style.css` and every ES module of
//! `ui/js` inlined, built once per process, so the page and its scripts arrive in one
//! response. No build tool: the sources in `ui/` are what runs (see `bundle`).

mod bundle;

use std::sync::OnceLock;

use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

pub use bundle::BundleError;

/// Every module under `ui/js`, by its path there. A module missing here fails the bundle
/// (its importer names it); a file under `ui/js` missing here fails a test.
const MODULES: &[(&str, &str)] = &[
    ("app.js", include_str!("../../ui/js/app.js")),
    ("api.js", include_str!("../../ui/js/api.js")),
    ("dom.js", include_str!("../../ui/js/dom.js")),
    ("histogram.js", include_str!("../../ui/js/histogram.js")),
    ("lib/format.js", include_str!("../../ui/js/lib/format.js")),
    (
        "lib/histogram_data.js",
        include_str!("../../ui/js/lib/histogram_data.js"),
    ),
    (
        "lib/index_pattern.js",
        include_str!("../../ui/js/lib/index_pattern.js"),
    ),
    (
        "lib/query_edit.js",
        include_str!("../../ui/js/lib/query_edit.js"),
    ),
    ("lib/time.js", include_str!("../../ui/js/lib/time.js")),
    (
        "lib/url_state.js",
        include_str!("../../ui/js/lib/url_state.js"),
    ),
    ("lib/yaml.js", include_str!("../../ui/js/lib/yaml.js")),
    (
        "pages/cluster.js",
        include_str!("../../ui/js/pages/cluster.js"),
    ),
    (
        "pages/indexes.js",
        include_str!("../../ui/js/pages/indexes.js"),
    ),
    (
        "pages/search.js",
        include_str!("../../ui/js/pages/search.js"),
    ),
];
const ENTRY: &str = "app.js";
const HTML: &str = include_str!("../../ui/index.html");
const STYLE: &str = include_str!("../../ui/style.css");
const STYLE_SLOT: &str = "/*QUARRY_STYLE*/";
const SCRIPT_SLOT: &str = "/*QUARRY_SCRIPT*/";

/// The page, ready to send.
pub struct UiPage {
    pub html: Bytes,
    pub gzipped: Bytes,
    /// A strong validator of the page's bytes.
    pub etag: String,
    /// Allows the page's own inline script and style (by hash) and calls to this node only.
    pub content_security_policy: String,
}

fn sha256_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, bytes)?;
    encoder.finish()
}

fn build() -> Result<UiPage, BundleError> {
    let script = bundle::bundle(MODULES, ENTRY)?;
    for (what, text, closing) in [
        ("script", script.as_str(), "</script"),
        ("style", STYLE, "</style"),
    ] {
        if text.to_ascii_lowercase().contains(closing) {
            return Err(BundleError::Module {
                module: what.to_string(),
                message: format!("contains `{closing}`, which would end the inline element"),
            });
        }
    }
    let html = HTML
        .replacen(STYLE_SLOT, STYLE, 1)
        .replacen(SCRIPT_SLOT, &script, 1);
    let gzipped = gzip(html.as_bytes()).map_err(|error| BundleError::Module {
        module: "index.html".to_string(),
        message: format!("gzip: {error}"),
    })?;
    let digest = Sha256::digest(html.as_bytes());
    let etag = format!(
        "\"{}\"",
        digest[..12]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    );
    let content_security_policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        sha256_base64(&script),
        sha256_base64(STYLE),
    );
    Ok(UiPage {
        html: Bytes::from(html),
        gzipped: Bytes::from(gzipped),
        etag,
        content_security_policy,
    })
}

/// The page, built on first use.
pub fn page() -> Result<&'static UiPage, &'static BundleError> {
    static PAGE: OnceLock<Result<UiPage, BundleError>> = OnceLock::new();
    PAGE.get_or_init(build).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_bundles_every_module_under_ui_js() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/js");
        let mut on_disk = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|extension| extension == "js") {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = MODULES.iter().map(|(path, _)| path.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "src/ui/mod.rs MODULES must list every file of ui/js"
        );

        let page = page().unwrap();
        let html = std::str::from_utf8(&page.html).unwrap();
        assert!(!html.contains(STYLE_SLOT) && !html.contains(SCRIPT_SLOT));
        assert!(html.contains("const __quarry_pages_search = (() => {"));
        assert!(page.gzipped.len() < page.html.len() / 3);
        assert!(page.content_security_policy.contains("script-src 'sha256-"));
    }
}

//! The noVNC client (npm package `@novnc/novnc`, vendored under `allocator/vendor/novnc` with
//! its licence), embedded at build time and served under `/desktop/novnc/`. Its modules import
//! one another by relative path, so the package's layout is kept as it is.

/// Every file of the package: its path inside the package, and its bytes.
pub static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/novnc_files.rs"));

/// The file at `path` and its content type; `None` for anything not in the package.
pub fn file(path: &str) -> Option<(&'static [u8], &'static str)> {
    let (_, bytes) = FILES.iter().find(|(name, _)| *name == path)?;
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    Some((bytes, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_embedded_with_its_licence() {
        let (rfb, content_type) = file("core/rfb.js").expect("rfb.js");
        assert!(std::str::from_utf8(rfb)
            .expect("text")
            .contains("export default class RFB"));
        assert_eq!(content_type, "text/javascript; charset=utf-8");
        assert!(file("LICENSE.txt").is_some());
        assert!(file("../Cargo.toml").is_none());
        // Every module rfb.js imports is there.
        let imports = std::str::from_utf8(rfb)
            .expect("text")
            .lines()
            .filter(|line| line.starts_with("import "))
            .filter_map(|line| line.rsplit(" from ").next())
            .map(|path| {
                path.trim_end_matches(';')
                    .trim_matches(|c| c == '"' || c == '\'')
                    .trim_start_matches("./")
                    .to_owned()
            })
            .collect::<Vec<_>>();
        assert!(imports.len() > 5, "{imports:?}");
        for import in imports {
            let resolved = if let Some(up) = import.strip_prefix("../") {
                up.to_owned()
            } else {
                format!("core/{import}")
            };
            assert!(file(&resolved).is_some(), "{resolved} is missing");
        }
    }
}

//! Embeds the vendored noVNC package (`vendor/novnc`) in the binary: a table of its files,
//! each as `include_bytes!`, so the allocator serves noVNC with no files beside it and no CDN.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest.join("vendor/novnc");
    println!("cargo:rerun-if-changed=vendor/novnc");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut table = String::from("&[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("under the root")
            .to_str()
            .expect("UTF-8 path")
            .replace('\\', "/");
        writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?}) as &[u8]),",
            file.to_str().expect("UTF-8 path")
        )
        .expect("write to a string");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("novnc_files.rs");
    std::fs::write(out, table).expect("write the noVNC table");
}

//! `lablink export participants|vms|audit`: the day's figures as CSV or JSON, to standard
//! output or a file.

use crate::api::Api;
use crate::cli::{ExportArgs, ExportFormat, ExportKind};
use crate::error::CliError;
use crate::output;

pub async fn run(api: &Api, args: ExportArgs) -> Result<(), CliError> {
    let kind = match args.kind {
        ExportKind::Participants => "participants",
        ExportKind::Vms => "vms",
        ExportKind::Audit => "audit",
    };
    let mut query = vec![format!(
        "format={}",
        match args.format {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    )];
    if let Some(workshop) = args.workshop {
        query.push(format!("workshop={workshop}"));
    }
    for (name, value) in [("from", &args.from), ("to", &args.to)] {
        if let Some(value) = value {
            let encoded: String = value
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                        (b as char).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect();
            query.push(format!("{name}={encoded}"));
        }
    }
    let bytes = api
        .download(&format!("/api/admin/export/{kind}?{}", query.join("&")))
        .await?;
    match args.output {
        Some(path) => {
            // Written beside and renamed, so a failed download never leaves half a file.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, &bytes)?;
            std::fs::rename(&partial, &path)?;
            output::note(&format!(
                "wrote {} bytes to {}",
                bytes.len(),
                path.display()
            ));
            Ok(())
        }
        None => output::bytes(&bytes),
    }
}

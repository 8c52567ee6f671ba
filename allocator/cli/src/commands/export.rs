//! `lablink export participants|vms|audit`: the day's figures as CSV or JSON, to standard
//! output or a file.

use crate::api::{self, Api};
use crate::cli::{ExportArgs, ExportFormat, ExportKind};
use crate::error::CliError;
use crate::output;

pub async fn run(api: &Api, args: ExportArgs) -> Result<(), CliError> {
    let kind = match args.kind {
        ExportKind::Participants => "participants",
        ExportKind::Vms => "vms",
        ExportKind::Audit => "audit",
    };
    let format = match args.format {
        ExportFormat::Csv => "csv",
        ExportFormat::Json => "json",
    };
    let mut query = vec![("format", format.to_owned())];
    if let Some(workshop) = args.workshop {
        query.push(("workshop", workshop.to_string()));
    }
    query.extend(args.from.map(|from| ("from", from)));
    query.extend(args.to.map(|to| ("to", to)));
    let bytes = api
        .download(&api::with_query(
            &format!("/api/admin/export/{kind}"),
            &query,
        ))
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

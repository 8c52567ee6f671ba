//! Following a log file on the VM (the research software's, the boot log): each call reads
//! the whole lines added since the last, from the offset kept beside the spool, so a
//! restarted agent neither repeats nor skips lines; a file that shrank (rotated, truncated)
//! is read again from its start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most bytes read from one file per call, so one huge file cannot stall the others.
const MOST_PER_READ: u64 = 1024 * 1024;

/// One followed file.
#[derive(Debug)]
pub struct Tail {
    pub source: String,
    path: PathBuf,
    offset_file: PathBuf,
    offset: u64,
}

impl Tail {
    /// Follows `path` as `source`, keeping its offset in `state_dir`.
    pub fn new(source: &str, path: &Path, state_dir: &Path) -> Tail {
        let offset_file = state_dir.join(format!("offset-{source}"));
        let offset = std::fs::read_to_string(&offset_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        Tail {
            source: source.to_owned(),
            path: path.to_owned(),
            offset_file,
            offset,
        }
    }

    /// The whole lines added since the last call (none while the file does not exist).
    /// Call [`Tail::commit`] once they are safely spooled.
    pub fn read_new(&mut self) -> io::Result<(Vec<String>, u64)> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok((Vec::new(), self.offset))
            }
            Err(err) => return Err(err),
        };
        let length = file.metadata()?.len();
        if length < self.offset {
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.take(MOST_PER_READ).read_to_end(&mut bytes)?;
        // Only whole lines; a partial last line waits for its end.
        let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
            return Ok((Vec::new(), self.offset));
        };
        let lines = String::from_utf8_lossy(&bytes[..end])
            .split('\n')
            .map(|line| line.trim_end_matches('\r').to_owned())
            .collect();
        Ok((lines, self.offset + end as u64 + 1))
    }

    /// Records that the file was read up to `offset`.
    pub fn commit(&mut self, offset: u64) -> io::Result<()> {
        if offset == self.offset {
            return Ok(());
        }
        self.offset = offset;
        let partial = self.offset_file.with_extension("partial");
        std::fs::write(&partial, offset.to_string())?;
        std::fs::rename(partial, &self.offset_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn whole_lines_are_read_once_across_restarts_and_a_truncated_file_from_its_start() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("software.log");
        let mut file = File::create(&log).expect("create");
        write!(file, "one\ntwo\nthr").expect("write");
        let mut tail = Tail::new("software", &log, dir.path());
        let (lines, offset) = tail.read_new().expect("read");
        assert_eq!(lines, ["one", "two"]);
        tail.commit(offset).expect("commit");
        writeln!(file, "ee").expect("write");

        // A new agent goes on from the committed offset.
        let mut tail = Tail::new("software", &log, dir.path());
        let (lines, offset) = tail.read_new().expect("read");
        assert_eq!(lines, ["three"]);
        tail.commit(offset).expect("commit");
        assert!(tail.read_new().expect("read").0.is_empty());

        // Rotated: read from the start.
        std::fs::write(&log, "fresh\n").expect("truncate");
        assert_eq!(tail.read_new().expect("read").0, ["fresh"]);
        // A missing file is no error.
        let mut missing = Tail::new("boot", &dir.path().join("none.log"), dir.path());
        assert!(missing.read_new().expect("read").0.is_empty());
    }
}

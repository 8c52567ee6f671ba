//! The agent's bounded on-disk spool of log lines not yet shipped, so an allocator restart
//! or a network cut loses nothing and a dead allocator never fills the disk.
//!
//! Lines are numbered (`seq`, rising by one) and appended as JSON lines to segment files
//! `segment-<first seq>.jsonl`; `shipped` holds the last number the allocator stored, and
//! `stream` a random name for this spool, so the allocator can tell a batch sent again from
//! a new spool that numbers from 1 (see `POST /api/vm-logs`). Past the cap the oldest
//! segments go, unshipped lines and all, and a line saying how many were dropped is added.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 256 * 1024;

/// One spooled line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledLine {
    pub seq: i64,
    pub source: String,
    pub logged_at: chrono::DateTime<chrono::Utc>,
    pub text: String,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    cap_bytes: u64,
    stream: String,
    shipped: i64,
    next_seq: i64,
    /// Segments oldest first: (first seq, size in bytes).
    segments: Vec<(i64, u64)>,
}

impl Spool {
    /// Opens the spool in `dir` (made if missing), going on where it stopped.
    pub fn open(dir: &Path, cap_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let stream = match fs::read_to_string(dir.join("stream")) {
            Ok(stream) if !stream.trim().is_empty() => stream.trim().to_owned(),
            _ => {
                let stream = format!("{:032x}", rand::random::<u128>());
                write_whole(&dir.join("stream"), &stream)?;
                stream
            }
        };
        let shipped = fs::read_to_string(dir.join("shipped"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        let mut segments: Vec<(i64, u64)> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let first = name
                    .strip_prefix("segment-")?
                    .strip_suffix(".jsonl")?
                    .parse()
                    .ok()?;
                Some((first, entry.metadata().ok()?.len()))
            })
            .collect();
        segments.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_owned(),
            cap_bytes,
            stream,
            shipped,
            next_seq: shipped + 1,
            segments,
        };
        if let Some(&(first, _)) = spool.segments.last() {
            let last = spool
                .read_segment(first)?
                .last()
                .map_or(first - 1, |line| line.seq);
            spool.next_seq = spool.next_seq.max(last + 1);
        }
        Ok(spool)
    }

    /// This spool's name, sent with every batch.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Appends lines, numbering them; then keeps the spool within its cap.
    pub fn append(
        &mut self,
        lines: impl IntoIterator<Item = (String, chrono::DateTime<chrono::Utc>, String)>,
    ) -> io::Result<()> {
        let mut text = String::new();
        let first = self.next_seq;
        for (source, logged_at, line) in lines {
            let spooled = SpooledLine {
                seq: self.next_seq,
                source,
                logged_at,
                text: line,
            };
            text.push_str(&serde_json::to_string(&spooled).map_err(io::Error::other)?);
            text.push('\n');
            self.next_seq += 1;
        }
        if text.is_empty() {
            return Ok(());
        }
        let segment = match self.segments.last() {
            Some(&(start, size)) if size < SEGMENT_BYTES => start,
            _ => {
                self.segments.push((first, 0));
                first
            }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.segment_path(segment))?;
        file.write_all(text.as_bytes())?;
        if let Some(last) = self.segments.last_mut() {
            last.1 += text.len() as u64;
        }
        self.keep_within_cap()
    }

    /// Up to `max_lines` lines not shipped yet, oldest first, of at most `max_bytes` of
    /// text in all (at least one line when any waits).
    pub fn pending(&self, max_lines: usize, max_bytes: usize) -> io::Result<Vec<SpooledLine>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for (index, &(first, _)) in self.segments.iter().enumerate() {
            // A segment whose successor starts at or below the shipped mark is all shipped.
            if self
                .segments
                .get(index + 1)
                .is_some_and(|&(next, _)| next <= self.shipped + 1)
            {
                continue;
            }
            for line in self.read_segment(first)? {
                if line.seq <= self.shipped {
                    continue;
                }
                if batch.len() == max_lines
                    || (!batch.is_empty() && bytes + line.text.len() > max_bytes)
                {
                    return Ok(batch);
                }
                bytes += line.text.len();
                batch.push(line);
            }
        }
        Ok(batch)
    }

    /// Whether any line waits to be shipped.
    pub fn has_pending(&self) -> bool {
        self.next_seq - 1 > self.shipped
    }

    /// Records that the allocator stored every line up to `seq`, and removes the segments
    /// that hold nothing else.
    pub fn mark_shipped(&mut self, seq: i64) -> io::Result<()> {
        if seq <= self.shipped {
            return Ok(());
        }
        write_whole(&self.dir.join("shipped"), &seq.to_string())?;
        self.shipped = seq;
        while self.segments.len() > 1 && self.segments[1].0 <= seq + 1 {
            let (first, _) = self.segments.remove(0);
            fs::remove_file(self.segment_path(first))?;
        }
        Ok(())
    }

    /// Drops the oldest segments past the cap, and says so in a line of its own.
    fn keep_within_cap(&mut self) -> io::Result<()> {
        let mut dropped = 0;
        while self.segments.len() > 1
            && self.segments.iter().map(|(_, size)| size).sum::<u64>() > self.cap_bytes
        {
            let (first, _) = self.segments.remove(0);
            let next = self.segments[0].0;
            let unshipped_from = first.max(self.shipped + 1);
            dropped += (next - unshipped_from).max(0);
            fs::remove_file(self.segment_path(first))?;
            // Lines dropped unshipped count as handled: shipping goes on after them.
            let handled = next - 1;
            if handled > self.shipped {
                write_whole(&self.dir.join("shipped"), &handled.to_string())?;
                self.shipped = handled;
            }
        }
        if dropped > 0 {
            let note = format!(
                "the log spool reached its cap of {} bytes while the allocator could not be \
                 reached: {dropped} older lines were dropped",
                self.cap_bytes
            );
            self.append([("agent".to_owned(), chrono::Utc::now(), note)])?;
        }
        Ok(())
    }

    fn segment_path(&self, first: i64) -> PathBuf {
        self.dir.join(format!("segment-{first:020}.jsonl"))
    }

    fn read_segment(&self, first: i64) -> io::Result<Vec<SpooledLine>> {
        let file = File::open(self.segment_path(first))?;
        // A line cut short by a crash mid-write is skipped.
        Ok(BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect())
    }
}

/// Writes `text` to `path` whole: to a temporary file first, then renamed into place.
fn write_whole(path: &Path, text: &str) -> io::Result<()> {
    let partial = path.with_extension("partial");
    fs::write(&partial, text)?;
    fs::rename(partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(
        texts: std::ops::Range<usize>,
    ) -> Vec<(String, chrono::DateTime<chrono::Utc>, String)> {
        texts
            .map(|i| {
                (
                    "agent".to_owned(),
                    chrono::Utc::now(),
                    format!("line {i:05}"),
                )
            })
            .collect()
    }

    fn texts(batch: &[SpooledLine]) -> Vec<String> {
        batch.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn lines_wait_until_shipped_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spool = Spool::open(dir.path(), 1 << 30).expect("open");
        spool.append(lines(0..5)).expect("append");
        let batch = spool.pending(3, 1 << 20).expect("pending");
        assert_eq!(texts(&batch), ["line 00000", "line 00001", "line 00002"]);
        assert_eq!(batch[0].seq, 1);
        spool.mark_shipped(batch[2].seq).expect("shipped");
        let stream = spool.stream().to_owned();

        // Reopened (the agent restarted): the same stream, the rest still waits, and new
        // lines go on from the last number.
        let mut spool = Spool::open(dir.path(), 1 << 30).expect("reopen");
        assert_eq!(spool.stream(), stream);
        spool.append(lines(5..6)).expect("append");
        let batch = spool.pending(100, 1 << 20).expect("pending");
        assert_eq!(texts(&batch), ["line 00003", "line 00004", "line 00005"]);
        assert_eq!(batch.iter().map(|l| l.seq).collect::<Vec<_>>(), [4, 5, 6]);
        spool.mark_shipped(6).expect("shipped");
        assert!(!spool.has_pending());
        assert!(spool.pending(100, 1 << 20).expect("pending").is_empty());
    }

    #[test]
    fn a_batch_keeps_to_its_byte_budget_but_holds_at_least_one_line() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spool = Spool::open(dir.path(), 1 << 30).expect("open");
        spool.append(lines(0..4)).expect("append");
        assert_eq!(spool.pending(100, 25).expect("pending").len(), 2);
        assert_eq!(spool.pending(100, 1).expect("pending").len(), 1);
    }

    #[test]
    fn past_its_cap_the_oldest_lines_go_and_the_drop_is_reported() {
        let dir = tempfile::tempdir().expect("dir");
        // A cap of about four segments.
        let mut spool = Spool::open(dir.path(), 4 * SEGMENT_BYTES).expect("open");
        for chunk in 0..40 {
            spool
                .append(lines(chunk * 1_000..(chunk + 1) * 1_000))
                .expect("append");
        }
        let on_disk: u64 = fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        assert!(
            on_disk <= 5 * SEGMENT_BYTES + 1024,
            "bounded: {on_disk} bytes"
        );
        let batch = spool.pending(100_000, 1 << 30).expect("pending");
        assert!(
            batch
                .iter()
                .any(|l| l.source == "agent" && l.text.contains("older lines were dropped")),
            "the drop is reported"
        );
        assert!(
            batch.iter().any(|l| l.text == "line 39999"),
            "the newest lines are kept"
        );
        assert!(
            !batch.iter().any(|l| l.text == "line 00000"),
            "the oldest went"
        );
        // Numbers still rise by one among what is kept.
        assert!(batch.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
}

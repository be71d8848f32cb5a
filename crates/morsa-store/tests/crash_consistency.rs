//! Crash consistency of the command log, with real crashes.
//!
//! The test re-executes its own binary as a *writer* child process (selected by an environment
//! variable and the test name) that appends records to a log in a loop and prints each sequence
//! number to stdout once `append` has returned, i.e. once the record is acknowledged. The parent
//! reads those acknowledgements, `SIGKILL`s the child in the middle of its loop, reopens the log
//! (redb recovers it) and checks:
//!
//! - every acknowledged record is there, with exactly the bytes that were appended;
//! - the log is dense (`0..len`) and every record in it, acknowledged or not, is intact;
//! - at most one write (a record or a batch) beyond the last acknowledgement exists: it was
//!   committed but the child died before printing it;
//! - the log ends on a write boundary: a batch is never recovered in part.
//!
//! Three rounds continue the same log, so recovery after a crash is itself crash-tested. The
//! child-process machinery is shared with the other crash tests, in `common/mod.rs`.
//!
//! This is a process crash: the kernel keeps what the child had written, so it tests redb's
//! commit protocol and our use of it, not what a power cut does to unsynced pages (that part
//! rests on `Durability::Immediate`, i.e. fsync before acknowledging).

use std::path::Path;
use std::time::{Duration, Instant};

use morsa_store::CommandLog;

use common::{Acknowledger, Writer, crash_after_acks, writer_dir};

mod common;

/// The writer child: the `crash_writer` test, with the log's directory in this variable.
const WRITER: Writer = Writer { test: "crash_writer", dir_env: "MORSA_STORE_CRASH_WRITER_DIR" };
const LOG_FILE: &str = "coord.redb";

const ROUNDS: usize = 3;
/// Acknowledgements the parent waits for before it kills the writer.
const ACKS_PER_ROUND: usize = 200;
/// The most records one write of the writer creates (it alternates single appends and batches).
const BATCH_LEN: u64 = 3;
/// Bounds on the writer, should the parent be gone without killing it.
const WRITER_MAX_WRITES: u64 = 100_000;
const WRITER_MAX_TIME: Duration = Duration::from_secs(120);

/// The content of record `seq`: its little-endian bytes repeated to a length between 0 and about
/// 9 KiB, so some records are empty and some span several redb pages.
fn expected_record(seq: u64) -> Vec<u8> {
    let len = usize::try_from(seq.wrapping_mul(2_654_435_761) % 9_001).expect("below 9001");
    seq.to_le_bytes().iter().copied().cycle().take(len).collect()
}

/// How many records the writer's `write`-th write of a round appends: three single appends,
/// then a batch of [`BATCH_LEN`], and again.
fn records_in_write(write: u64) -> u64 {
    if write % 4 == 3 { BATCH_LEN } else { 1 }
}

/// The writer child. In a normal test run (no environment variable) it does nothing.
#[test]
fn crash_writer() {
    let Some(dir) = writer_dir(&WRITER) else {
        return;
    };
    let log = CommandLog::open(&dir.join(LOG_FILE)).expect("writer opens the log");
    let mut next = log.len().expect("writer reads the length");
    let started = Instant::now();
    let Some(mut acknowledger) = Acknowledger::start() else {
        return; // The parent is gone.
    };
    for write in 0..WRITER_MAX_WRITES {
        if started.elapsed() > WRITER_MAX_TIME {
            return;
        }
        let acknowledged = if records_in_write(write) > 1 {
            let batch: Vec<Vec<u8>> = (next..next + records_in_write(write)).map(expected_record).collect();
            log.append_batch(&batch).expect("writer appends a batch")
        } else {
            let seq = log.append(&expected_record(next)).expect("writer appends a record");
            seq..seq + 1
        };
        assert_eq!(acknowledged.start, next, "the log handed out an unexpected seq");
        next = acknowledged.end;
        if !acknowledger.ack(acknowledged) {
            return; // The parent is gone.
        }
    }
}

/// Reopens the log after a crash and checks it against the acknowledgements; returns its length.
fn check_recovered_log(path: &Path, first_seq: u64, acknowledged: &[u64]) -> u64 {
    let expected_acks: Vec<u64> = (first_seq..).take(acknowledged.len()).collect();
    assert_eq!(
        acknowledged, expected_acks,
        "the writer continues the log densely from where the last crash left it"
    );
    let last_acknowledged = *acknowledged.last().expect("at least one acknowledgement");

    let log = CommandLog::open(path).expect("the log reopens after a crash");
    let len = log.len().expect("length");
    assert!(
        len > last_acknowledged,
        "acknowledged record {last_acknowledged} was lost: the log has only {len} records"
    );
    assert!(
        len - 1 - last_acknowledged <= BATCH_LEN,
        "{} records beyond the last acknowledgement ({last_acknowledged}); at most one write \
         ({BATCH_LEN} records) may be committed but unacknowledged",
        len - 1 - last_acknowledged
    );

    // A batch is all or nothing: the log ends where one of this round's writes ended.
    let mut boundary = first_seq;
    let mut write = 0;
    while boundary < len {
        boundary += records_in_write(write);
        write += 1;
    }
    assert_eq!(boundary, len, "the log ends inside a batch: a batch was committed in part");

    // Dense and intact: every record, acknowledged or not, is exactly what was appended.
    let mut next = 0;
    log.for_each(|seq, record| {
        assert_eq!(seq, next, "the log is dense");
        assert!(
            record == expected_record(seq),
            "record {seq} has the wrong content ({} bytes, expected {})",
            record.len(),
            expected_record(seq).len()
        );
        next += 1;
        Ok(())
    })
    .expect("replay the whole log");
    assert_eq!(next, len, "the replay visits every record");

    // A page read agrees with the replay around the crash point.
    let from = last_acknowledged.saturating_sub(5);
    let page = log.read(from, 100).expect("read a page");
    let page_seqs: Vec<u64> = page.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(page_seqs, (from..len).collect::<Vec<_>>());
    for (seq, record) in page {
        assert_eq!(record, expected_record(seq));
    }
    len
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(LOG_FILE);
    let mut len = 0;
    for round in 0..ROUNDS {
        let acknowledged = crash_after_acks(&WRITER, dir.path(), &[], ACKS_PER_ROUND);
        let recovered = check_recovered_log(&path, len, &acknowledged);
        eprintln!(
            "round {round}: {} acknowledged, last {}, recovered {recovered} records",
            acknowledged.len(),
            acknowledged.last().expect("acknowledgements")
        );
        len = recovered;
    }
    assert!(len >= u64::try_from(ROUNDS * ACKS_PER_ROUND).expect("small"));
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable};
use tempfile::TempDir;

use super::{CommandLog, MAX_RECORD_BYTES, META, RECORDS};
use crate::StoreError;

fn new_log() -> (TempDir, PathBuf, CommandLog) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let log = CommandLog::open(&path).unwrap();
    (dir, path, log)
}

/// Deterministic record content of varying length, different for every `seq`.
fn record(seq: u64) -> Vec<u8> {
    let len = usize::try_from(seq % 13 * 37).unwrap();
    seq.to_le_bytes().iter().copied().cycle().take(len).collect()
}

fn collect_all(log: &CommandLog) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut all = Vec::new();
    log.for_each(|seq, bytes| {
        all.push((seq, bytes.to_vec()));
        Ok(())
    })?;
    Ok(all)
}

/// Opens the raw redb file behind a (closed) log to damage it the way a bad disk would.
fn tamper(path: &Path, damage: impl FnOnce(&mut redb::Table<u64, &[u8]>, &mut redb::Table<&str, &[u8]>)) {
    let db = Database::open(path).unwrap();
    let transaction = db.begin_write().unwrap();
    {
        let mut records = transaction.open_table(RECORDS).unwrap();
        let mut meta = transaction.open_table(META).unwrap();
        damage(&mut records, &mut meta);
    }
    transaction.commit().unwrap();
}

#[test]
fn appends_get_dense_sequence_numbers_and_read_back_in_order() {
    let (_dir, _path, log) = new_log();
    assert!(log.is_empty().unwrap());
    assert_eq!(log.len().unwrap(), 0);
    for seq in 0..20 {
        assert_eq!(log.append(&record(seq)).unwrap(), seq);
    }
    assert_eq!(log.len().unwrap(), 20);
    assert!(!log.is_empty().unwrap());

    let expected: Vec<_> = (0..20).map(|seq| (seq, record(seq))).collect();
    assert_eq!(log.read(0, 100).unwrap(), expected);
    assert_eq!(collect_all(&log).unwrap(), expected);
}

#[test]
fn empty_records_are_records() {
    let (_dir, _path, log) = new_log();
    assert_eq!(log.append(b"").unwrap(), 0);
    assert_eq!(log.append(b"x").unwrap(), 1);
    assert_eq!(log.read(0, 10).unwrap(), vec![(0, vec![]), (1, b"x".to_vec())]);
}

#[test]
fn read_returns_bounded_pages() {
    let (_dir, _path, log) = new_log();
    for seq in 0..10 {
        log.append(&record(seq)).unwrap();
    }
    let page = |from, limit| -> Vec<u64> {
        log.read(from, limit)
            .unwrap()
            .into_iter()
            .map(|(seq, bytes)| {
                assert_eq!(bytes, record(seq));
                seq
            })
            .collect()
    };
    assert_eq!(page(0, 3), vec![0, 1, 2]);
    assert_eq!(page(3, 3), vec![3, 4, 5]);
    assert_eq!(page(8, 3), vec![8, 9], "a page is cut short by the end of the log");
    assert_eq!(page(10, 3), Vec::<u64>::new());
    assert_eq!(page(1_000, 3), Vec::<u64>::new());
    assert_eq!(page(4, 0), Vec::<u64>::new());
    assert_eq!(page(0, 1), vec![0]);

    // Paging through the whole log visits every record once, in order.
    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let chunk = log.read(from, 4).unwrap();
        let Some(&(last, _)) = chunk.last() else { break };
        seen.extend(chunk.into_iter().map(|(seq, _)| seq));
        from = last + 1;
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[test]
fn batches_get_consecutive_ranges() {
    let (_dir, _path, log) = new_log();
    assert_eq!(log.append_batch(&[]).unwrap(), 0..0);
    assert_eq!(log.append_batch(&[record(0), record(1), record(2)]).unwrap(), 0..3);
    assert_eq!(log.append(&record(3)).unwrap(), 3);
    assert_eq!(log.append_batch(&[record(4)]).unwrap(), 4..5);
    assert_eq!(log.append_batch(&[]).unwrap(), 5..5);
    assert_eq!(log.append_batch(&[record(5), record(6)]).unwrap(), 5..7);
    let expected: Vec<_> = (0..7).map(|seq| (seq, record(seq))).collect();
    assert_eq!(collect_all(&log).unwrap(), expected);
}

#[test]
fn oversized_records_are_refused_and_nothing_is_written() {
    let (_dir, _path, log) = new_log();
    log.append(b"first").unwrap();

    let too_large = vec![7_u8; MAX_RECORD_BYTES + 1];
    let error = log.append(&too_large).unwrap_err();
    assert!(
        matches!(error, StoreError::RecordTooLarge { len, max } if len == MAX_RECORD_BYTES + 1 && max == MAX_RECORD_BYTES),
        "{error:?}"
    );
    // One bad record fails the whole batch.
    let error = log.append_batch(&[b"fine".to_vec(), too_large.clone()]).unwrap_err();
    assert!(matches!(error, StoreError::RecordTooLarge { .. }), "{error:?}");
    let error = log.put_meta("big", &too_large).unwrap_err();
    assert!(matches!(error, StoreError::RecordTooLarge { .. }), "{error:?}");
    assert_eq!(log.len().unwrap(), 1);
    assert_eq!(log.get_meta("big").unwrap(), None);

    // The limit itself is allowed.
    let at_limit = vec![9_u8; MAX_RECORD_BYTES];
    assert_eq!(log.append(&at_limit).unwrap(), 1);
    assert_eq!(log.read(1, 1).unwrap(), vec![(1, at_limit)]);
}

#[test]
fn meta_round_trips_and_overwrites() {
    let (_dir, _path, log) = new_log();
    assert_eq!(log.get_meta("epoch").unwrap(), None);
    log.put_meta("epoch", b"1").unwrap();
    log.put_meta("chain_head", &[0xAB; 32]).unwrap();
    log.put_meta("empty", b"").unwrap();
    assert_eq!(log.get_meta("epoch").unwrap(), Some(b"1".to_vec()));
    assert_eq!(log.get_meta("chain_head").unwrap(), Some(vec![0xAB; 32]));
    assert_eq!(log.get_meta("empty").unwrap(), Some(vec![]));
    log.put_meta("epoch", b"2").unwrap();
    assert_eq!(log.get_meta("epoch").unwrap(), Some(b"2".to_vec()));
    assert_eq!(log.len().unwrap(), 0, "metadata is not part of the log");
}

#[test]
fn reopening_keeps_records_and_meta() {
    let (_dir, path, log) = new_log();
    for seq in 0..5 {
        log.append(&record(seq)).unwrap();
    }
    log.append_batch(&[record(5), record(6)]).unwrap();
    log.put_meta("epoch", b"3").unwrap();
    drop(log);

    let log = CommandLog::open(&path).unwrap();
    assert_eq!(log.len().unwrap(), 7);
    let expected: Vec<_> = (0..7).map(|seq| (seq, record(seq))).collect();
    assert_eq!(collect_all(&log).unwrap(), expected);
    assert_eq!(log.get_meta("epoch").unwrap(), Some(b"3".to_vec()));
    assert_eq!(log.append(&record(7)).unwrap(), 7, "appends continue after the old end");
}

#[test]
fn for_each_stops_at_the_callbacks_error() {
    let (_dir, _path, log) = new_log();
    for seq in 0..5 {
        log.append(&record(seq)).unwrap();
    }
    let mut visited = Vec::new();
    let error = log
        .for_each(|seq, _| {
            visited.push(seq);
            if seq == 2 {
                return Err(StoreError::Replay { seq, source: "unknown command tag".into() });
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(visited, vec![0, 1, 2]);
    assert!(matches!(error, StoreError::Replay { seq: 2, .. }), "{error:?}");
    assert_eq!(error.to_string(), "replaying record 2 failed: unknown command tag");
}

#[test]
fn concurrent_appends_stay_dense() {
    let (_dir, _path, log) = new_log();
    let log = Arc::new(log);
    let threads: Vec<_> = (0..4_u8)
        .map(|thread| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..10_u8).map(|i| (log.append(&[thread, i]).unwrap(), [thread, i])).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acknowledged: Vec<_> = threads.into_iter().flat_map(|thread| thread.join().unwrap()).collect();
    acknowledged.sort_unstable();
    let stored: Vec<_> = log
        .read(0, 100)
        .unwrap()
        .into_iter()
        .map(|(seq, bytes)| (seq, <[u8; 2]>::try_from(bytes).unwrap()))
        .collect();
    assert_eq!(stored, acknowledged);
    assert_eq!(stored.len(), 40);
}

#[test]
fn a_damaged_record_is_reported_not_returned() {
    let (_dir, path, log) = new_log();
    for seq in 0..4 {
        log.append(&record(seq)).unwrap();
    }
    drop(log);
    tamper(&path, |records, _| {
        let mut stored = records.get(2).unwrap().unwrap().value().to_vec();
        let last = stored.len() - 1;
        stored[last] ^= 0x01;
        records.insert(2, stored.as_slice()).unwrap();
    });

    let log = CommandLog::open(&path).unwrap();
    assert_eq!(log.read(0, 2).unwrap().len(), 2, "records before the damage still read");
    let error = log.read(0, 10).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { seq: 2 }), "{error:?}");
    let mut visited = Vec::new();
    let error = log
        .for_each(|seq, _| {
            visited.push(seq);
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { seq: 2 }), "{error:?}");
    assert_eq!(visited, vec![0, 1], "the replay stops before the damaged record");
}

#[test]
fn a_record_under_the_wrong_sequence_number_is_corrupt() {
    let (_dir, path, log) = new_log();
    log.append(b"same bytes").unwrap();
    log.append(b"other").unwrap();
    drop(log);
    // A valid value copied under another key: its checksum binds it to seq 0.
    tamper(&path, |records, _| {
        let stored = records.get(0).unwrap().unwrap().value().to_vec();
        records.insert(1, stored.as_slice()).unwrap();
    });
    let log = CommandLog::open(&path).unwrap();
    let error = log.read(1, 1).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { seq: 1 }), "{error:?}");
}

#[test]
fn a_truncated_value_is_corrupt() {
    let (_dir, path, log) = new_log();
    log.append(b"abc").unwrap();
    drop(log);
    tamper(&path, |records, _| {
        records.insert(0, [1_u8, 2].as_slice()).unwrap();
    });
    let log = CommandLog::open(&path).unwrap();
    let error = log.read(0, 1).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { seq: 0 }), "{error:?}");
}

#[test]
fn a_damaged_meta_value_is_reported() {
    let (_dir, path, log) = new_log();
    log.put_meta("epoch", b"12").unwrap();
    drop(log);
    tamper(&path, |_, meta| {
        let mut stored = meta.get("epoch").unwrap().unwrap().value().to_vec();
        stored[4] = b'9';
        meta.insert("epoch", stored.as_slice()).unwrap();
    });
    let log = CommandLog::open(&path).unwrap();
    let error = log.get_meta("epoch").unwrap_err();
    assert!(matches!(&error, StoreError::CorruptMeta { key } if key == "epoch"), "{error:?}");
}

#[test]
fn a_missing_record_is_a_gap() {
    let (_dir, path, log) = new_log();
    for seq in 0..5 {
        log.append(&record(seq)).unwrap();
    }
    drop(log);
    tamper(&path, |records, _| {
        records.remove(2).unwrap();
    });
    let error = CommandLog::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Gap { expected: 2, found: 3 }), "{error:?}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let error = CommandLog::open(&path).unwrap_err();
    assert!(matches!(&error, StoreError::NotADatabase { path: p } if *p == path), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), content);

    // A short file is refused too.
    std::fs::write(&path, b"hi").unwrap();
    let error = CommandLog::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::NotADatabase { .. }), "{error:?}");
}

#[test]
fn an_empty_file_becomes_a_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.redb");
    std::fs::write(&path, b"").unwrap();
    let log = CommandLog::open(&path).unwrap();
    assert_eq!(log.append(b"a").unwrap(), 0);
}

#[test]
fn a_log_open_elsewhere_is_locked() {
    let (_dir, path, log) = new_log();
    let error = CommandLog::open(&path).unwrap_err();
    assert!(matches!(&error, StoreError::Locked { path: p } if *p == path), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    drop(log);
    CommandLog::open(&path).unwrap();
}

#[test]
fn a_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/log.redb");
    let error = CommandLog::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
}

#[test]
fn errors_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<StoreError>();
    assert_send_sync::<CommandLog>();
}

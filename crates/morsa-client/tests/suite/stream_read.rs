//! Reads of large files write their bytes out as they go, a window of rows at a time, not the
//! whole blob at once: plaintext, age files, chunked files, and with a node down (its rows
//! rebuilt from the others' recovery symbols).

use std::io::Write;

use crate::common;

use common::{System, data};
use morsa_client::{Client, Crypto, StoreOptions};

const N: u16 = 13;
/// Blobs from 1 MiB on are streamed, in windows of about 256 KiB (at least one row).
const FROM: u64 = 1 << 20;
const WINDOW: u64 = 256 << 10;

/// A writer that keeps the size of every write it was given.
#[derive(Default)]
struct Recorder {
    bytes: Vec<u8>,
    writes: Vec<usize>,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes.push(buf.len());
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `blob_id` as a file and checks it against `expected`: every byte, and that it came
/// in pieces no larger than `largest` (so never the whole file at once).
async fn read_in_pieces(client: &Client, blob_id: &redstuff::BlobId, expected: &[u8], largest: usize) {
    let mut out = Recorder::default();
    let summary = client.read_file(blob_id, &mut out).await.unwrap();
    assert!(out.bytes == expected, "the file read back differs");
    assert_eq!(summary.size, u64::try_from(expected.len()).unwrap());
    assert!(out.writes.len() >= 3, "written in windows, not at once: {:?}", out.writes);
    let most = out.writes.iter().copied().max().unwrap();
    assert!(most <= largest, "a write of {most} bytes, more than {largest}: {:?}", out.writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_and_chunks_are_written_a_window_at_a_time() {
    let mut system = System::start(4, N).await;
    let client = system.client().await.with_stream_window(FROM, WINDOW).with_chunk_size(3 << 20);
    let dir = tempfile::tempdir().unwrap();

    // One blob (under the chunk size), then a file of three chunks and a short last one.
    let one = data(2_500_000, 7);
    let chunked = data(10_000_000, 8);
    let mut stored = Vec::new();
    for (name, bytes) in [("one", &one), ("chunked", &chunked)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        stored.push((client.store_file(&path, &StoreOptions::default()).await.unwrap(), bytes));
    }
    assert_eq!(stored[1].0.blobs.len(), 5, "four chunks and the manifest");
    client.finish_uploads(std::time::Duration::from_secs(30)).await;
    // A row of a 3 MiB chunk at n = 13 is under 1 MiB: a window is one row or a few.
    for (file, bytes) in &stored {
        read_in_pieces(&client, &file.blob_id, bytes, 1 << 20).await;
    }

    // With a node down the rows it held are rebuilt, and the bytes are still the file's.
    system.stop_node(0).await;
    for (file, bytes) in &stored {
        read_in_pieces(&client, &file.blob_id, bytes, 1 << 20).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_age_file_is_opened_a_window_at_a_time() {
    let system = System::start(4, N).await;
    let identity = age::x25519::Identity::generate();
    let crypto = Crypto::new(Some(identity.to_public()), vec![identity]);
    let client = system.client().await.with_crypto(crypto).with_stream_window(FROM, WINDOW);
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(3_000_000, 9);
    let path = dir.path().join("sealed");
    std::fs::write(&path, &bytes).unwrap();
    let stored = client.store_file(&path, &StoreOptions::default()).await.unwrap();
    client.finish_uploads(std::time::Duration::from_secs(30)).await;
    // Windows of an age file are whole 64 KiB segments: 256 KiB here.
    read_in_pieces(&client, &stored.blob_id, &bytes, usize::try_from(WINDOW).unwrap()).await;
}

//! The manifest-tag rule: a blob that starts with [`manifest::MAGIC`] is read as a chunked
//! file's manifest only if Morsa stored it as one. A small file that itself starts with the
//! tag (even one holding a valid manifest) comes back byte-identical, and a blob from
//! elsewhere that starts with the tag but does not parse is returned as it is.

use crate::common;

use common::{System, data};
use morsa_client::StoreOptions;
use morsa_client::manifest::{Chunk, MAGIC, Manifest};

const N: u16 = 13;

/// A file whose bytes are a valid manifest naming a real blob: reading the file must give the
/// file, not the blob its text names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_starting_with_the_tag_round_trips_byte_identical() {
    let system = System::start(4, N).await;
    let client = system.client().await;
    let other = data(3000, 21);
    let other_id = client.store_blob(other.clone(), &StoreOptions::default()).await.unwrap().blob_id;
    let manifest = Manifest { size: 3000, chunks: vec![Chunk { blob_id: other_id, size: 3000 }] };
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("valid-manifest", manifest.to_bytes()), ("just-the-tag", MAGIC.to_vec())] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let stored = client.store_file(&path, &StoreOptions::default()).await.unwrap();
        assert_eq!(stored.size, u64::try_from(bytes.len()).unwrap());
        let mut back = Vec::new();
        let summary = client.read_file(&stored.blob_id, &mut back).await.unwrap();
        assert!(back == bytes, "{name}: the file comes back as it was, not as what it names");
        assert_eq!(summary.size, u64::try_from(bytes.len()).unwrap());
        let range = client.read_file_range(&stored.blob_id, 1..5).await.unwrap();
        assert_eq!(range.data, bytes[1..5], "{name}");
    }
}

/// A blob stored whole by another writer that starts with the tag but is no manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_blob_with_the_tag_that_does_not_parse_is_returned_as_is() {
    let system = System::start(4, N).await;
    let client = system.client().await;
    let mut blob = MAGIC.to_vec();
    blob.extend_from_slice(b"{\"not\": \"a manifest\"}");
    let blob_id = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap().blob_id;
    let mut back = Vec::new();
    client.read_file(&blob_id, &mut back).await.unwrap();
    assert!(back == blob, "returned as it is");
    let range = client.read_file_range(&blob_id, 0..4).await.unwrap();
    assert_eq!(range.data, blob[..4]);
}

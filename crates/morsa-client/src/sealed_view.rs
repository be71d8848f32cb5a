//! Reading what a file was stored as: blobs that are age files are opened, and a range of one
//! is read from the sealed segments that cover it (plus its header), not the whole blob.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use redstuff::{BlobId, VerifiedMetadata};

use crate::crypt::CryptError;
use crate::crypt::segments::{self, AGE_MAGIC, Sparse};
use crate::nodes::NodeSet;
use crate::range_bytes::RangeBytes;
use crate::read::{ReadLog, ReadOutcome};
use crate::{Client, Error};

/// Bytes fetched first to find an age header (one X25519 stanza makes about 200).
const FIRST_HEAD: u64 = 4096;

/// The largest age header read (many recipients or long stanzas).
const MAX_HEAD: u64 = 64 * 1024;

/// A blob as a file's reader sees it: its verified metadata and, for an age file, what is
/// needed to open any range of it.
pub(crate) struct View {
    metadata: Arc<VerifiedMetadata>,
    sealed: Option<Sealed>,
}

struct Sealed {
    /// The header and nonce.
    head: Vec<u8>,
    plaintext_len: u64,
}

impl View {
    /// The size of what the blob holds: its plaintext if it is an age file.
    pub(crate) fn len(&self) -> u64 {
        self.sealed.as_ref().map_or_else(|| self.metadata.unencoded_length(), |sealed| sealed.plaintext_len)
    }

    /// Whether the blob is an age file (read through its header).
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    fn blob_id(&self) -> BlobId {
        *self.metadata.blob_id()
    }
}

impl Client {
    /// Looks at the start of the blob of `metadata`: an age file's header is kept.
    pub(crate) async fn view(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: Arc<VerifiedMetadata>,
        log: &mut ReadLog,
    ) -> Result<View, Error> {
        let len = metadata.unencoded_length();
        let magic = u64::try_from(AGE_MAGIC.len()).unwrap_or(u64::MAX);
        if len < magic {
            return Ok(View { metadata, sealed: None });
        }
        let blob_id = *metadata.blob_id();
        let damaged = |reason: String| Error::Crypt(CryptError::Damaged { blob_id, reason });
        let mut head = self.range_with_metadata(nodes, &metadata, 0..len.min(FIRST_HEAD), log).await?;
        if !head.starts_with(AGE_MAGIC) {
            return Ok(View { metadata, sealed: None });
        }
        let start = loop {
            match segments::payload_start(&head).map_err(damaged)? {
                Some(start) => break start,
                None if u64::try_from(head.len()).unwrap_or(u64::MAX) < len.min(MAX_HEAD) => {
                    head = self.range_with_metadata(nodes, &metadata, 0..len.min(MAX_HEAD), log).await?;
                }
                None => return Err(damaged(format!("no complete age header in its first {MAX_HEAD} bytes"))),
            }
        };
        let plaintext_len = segments::plaintext_len(len, start).map_err(damaged)?;
        head.truncate(usize::try_from(start).expect("the header is in memory"));
        Ok(View { metadata, sealed: Some(Sealed { head, plaintext_len }) })
    }

    /// Bytes `range` of what `view`'s blob holds.
    pub(crate) async fn view_range(
        &self,
        nodes: &Arc<NodeSet>,
        view: &View,
        range: Range<u64>,
        log: &mut ReadLog,
    ) -> Result<Vec<u8>, Error> {
        self.view_range_bytes(nodes, view, range, log).await.map(RangeBytes::into_vec)
    }

    /// [`Client::view_range`], the bytes of a blob that is not an age file left where they
    /// lie in its rows.
    pub(crate) async fn view_range_bytes(
        &self,
        nodes: &Arc<NodeSet>,
        view: &View,
        range: Range<u64>,
        log: &mut ReadLog,
    ) -> Result<RangeBytes, Error> {
        let Some(sealed) = &view.sealed else {
            return self.range_bytes(nodes, &view.metadata, range, log).await;
        };
        if range.start > range.end || range.end > sealed.plaintext_len {
            return Err(Error::BadRange { start: range.start, end: range.end, len: sealed.plaintext_len });
        }
        if range.is_empty() {
            return Ok(RangeBytes::default());
        }
        let sealed_len = view.metadata.unencoded_length();
        let start = u64::try_from(sealed.head.len()).unwrap_or(u64::MAX);
        let mut pieces = vec![(0, sealed.head.clone())];
        for piece in segments::sealed_pieces(start, sealed_len, &range) {
            let bytes = self.range_with_metadata(nodes, &view.metadata, piece.clone(), log).await?;
            pieces.push((piece.start, bytes));
        }
        let crypto = Arc::clone(&self.crypto);
        let blob_id = view.blob_id();
        let file = Sparse::new(sealed_len, pieces);
        tokio::task::spawn_blocking(move || {
            let damaged = |error: std::io::Error| CryptError::Damaged { blob_id, reason: error.to_string() };
            let mut reader = crypto.opener(&blob_id, file)?;
            reader.seek(SeekFrom::Start(range.start)).map_err(damaged)?;
            let mut plaintext =
                vec![0u8; usize::try_from(range.end - range.start).expect("a range in memory")];
            reader.read_exact(&mut plaintext).map_err(damaged)?;
            Ok::<_, CryptError>(plaintext)
        })
        .await
        .map_err(Error::panicked("decryption"))?
        .map(RangeBytes::from)
        .map_err(Error::Crypt)
    }

    /// Bytes `range` of what blob `blob_id` holds: of its plaintext if it is an age file
    /// (only the segments covering the range are fetched), else of its bytes.
    pub async fn read_opened_range(&self, blob_id: &BlobId, range: Range<u64>) -> Result<ReadOutcome, Error> {
        let nodes = self.refresh_nodes().await?;
        let mut log = ReadLog::default();
        let metadata = self.verified_metadata(&nodes, blob_id, &mut log).await?;
        let view = self.view(&nodes, metadata, &mut log).await?;
        let data = self.view_range(&nodes, &view, range, &mut log).await?;
        Ok(log.into_outcome(data))
    }

    /// What `bytes`, read from blob `blob_id`, hold: opened on a blocking thread if they are
    /// an age file.
    pub(crate) async fn opened(&self, blob_id: &BlobId, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        if !bytes.starts_with(AGE_MAGIC) {
            return Ok(bytes);
        }
        let crypto = Arc::clone(&self.crypto);
        let blob_id = *blob_id;
        tokio::task::spawn_blocking(move || crypto.open(&blob_id, bytes))
            .await
            .map_err(Error::panicked("decryption"))?
            .map_err(Error::Crypt)
    }

    /// `data` sealed on a blocking thread if the client encrypts what it stores.
    pub(crate) async fn sealed(&self, data: Vec<u8>) -> Result<Vec<u8>, Error> {
        if !self.crypto.seals() {
            return Ok(data);
        }
        let crypto = Arc::clone(&self.crypto);
        tokio::task::spawn_blocking(move || crypto.seal(&data))
            .await
            .map_err(Error::panicked("encryption"))?
            .map_err(Error::Crypt)
    }
}

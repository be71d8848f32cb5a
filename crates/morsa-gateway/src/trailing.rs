//! The uploads of a certified chunk blob that go on after it (to the nodes outside the first
//! quorum): they hold the blob's encoding, so they finish on a task of their own holding the
//! permit that bounds that memory. Stores on the gateway's one client so never wait for one
//! another's uploads (`morsa_client::Client::store_blob_detached`).

use std::time::Duration;

use morsa_client::DetachedUploads;

/// Longest a stored blob's uploads go on after it is certified (the nodes left without their
/// slivers then rebuild them themselves).
const TRAILING_UPLOADS_LIMIT: Duration = Duration::from_secs(120);

/// Lets `uploads` finish on a task of their own, holding `permit` until they end.
pub(crate) fn finish_uploads_holding<P: Send + 'static>(uploads: DetachedUploads, permit: P) {
    tokio::spawn(async move {
        uploads.finish(TRAILING_UPLOADS_LIMIT).await;
        drop(permit);
    });
}

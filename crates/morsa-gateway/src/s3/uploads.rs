//! ListMultipartUploads: the uploads in progress in a bucket, by key and, within a key, in
//! the order they were created; `prefix`, `delimiter`, `key-marker`, `upload-id-marker`,
//! `max-uploads` and `encoding-type=url` as in S3.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::list::{MAX_KEYS, encode, max_keys, url_encoded};
use crate::gateway::{Gateway, timestamp};
use crate::listing::VersionQuery;

pub(super) async fn list_uploads(
    gateway: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let url = url_encoded(input.encoding_type.as_ref());
    let prefix = input.prefix.clone().unwrap_or_default();
    let (bucket, delimiter) = (input.bucket.clone(), input.delimiter.clone());
    let (key_marker, id_marker) = (input.key_marker.clone(), input.upload_id_marker.clone());
    let max = max_keys(input.max_uploads);
    let listing = gateway
        .blocking(move |db| {
            let query = VersionQuery {
                prefix: &prefix,
                delimiter: delimiter.as_deref(),
                key_marker: key_marker.as_deref().filter(|marker| !marker.is_empty()),
                version_id_marker: id_marker.as_deref().filter(|marker| !marker.is_empty()),
                max_keys: max,
            };
            db.list_uploads(&bucket, &owner, &query)
        })
        .await?;
    let uploads = listing
        .versions
        .into_iter()
        .map(|(key, (id, upload))| MultipartUpload {
            key: Some(encode(&key, url)),
            upload_id: Some(id),
            initiated: Some(timestamp(upload.created_ms)),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    let prefixes =
        listing.prefixes.iter().map(|prefix| CommonPrefix { prefix: Some(encode(prefix, url)) }).collect();
    let (next_key, next_id) = match listing.next {
        Some((key, id)) => (Some(encode(&key, url)), id),
        None => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(encode(input.prefix.as_deref().unwrap_or_default(), url)),
        delimiter: input.delimiter.map(|delimiter| encode(&delimiter, url)),
        key_marker: input.key_marker.map(|marker| encode(&marker, url)),
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(input.max_uploads.unwrap_or(MAX_KEYS)),
        is_truncated: Some(next_key.is_some()),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: Some(uploads),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

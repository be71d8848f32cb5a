//! PutBucketVersioning, GetBucketVersioning and ListObjectVersions.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::list::{MAX_KEYS, encode, max_keys, url_encoded};
use crate::gateway::{Gateway, timestamp};
use crate::listing::VersionQuery;
use crate::namespace::Versioning;

pub(super) async fn put_versioning(
    gateway: &Gateway,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let versioning = match input.versioning_configuration.status.as_ref().map(BucketVersioningStatus::as_str)
    {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        other => {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                format!("Versioning status {other:?}: use Enabled or Suspended."),
            ));
        }
    };
    let bucket = input.bucket;
    gateway
        .blocking(move |db| {
            db.update_bucket_settings(&bucket, &owner, |settings| {
                settings.versioning = versioning;
                Ok(())
            })
        })
        .await?;
    Ok(S3Response::new(PutBucketVersioningOutput::default()))
}

pub(super) async fn get_versioning(
    gateway: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let owner = gateway.owner(&req)?;
    let settings = gateway.db.bucket_settings(&req.input.bucket, &owner)?;
    let status = match settings.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
        Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
    };
    Ok(S3Response::new(GetBucketVersioningOutput { status, mfa_delete: None }))
}

pub(super) async fn list_object_versions(
    gateway: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let url = url_encoded(input.encoding_type.as_ref());
    let prefix = input.prefix.clone().unwrap_or_default();
    let (bucket, delimiter) = (input.bucket.clone(), input.delimiter.clone());
    let (key_marker, version_marker) = (input.key_marker.clone(), input.version_id_marker.clone());
    let max = max_keys(input.max_keys);
    let listing = gateway
        .blocking(move |db| {
            let query = VersionQuery {
                prefix: &prefix,
                delimiter: delimiter.as_deref(),
                key_marker: key_marker.as_deref().filter(|marker| !marker.is_empty()),
                version_id_marker: version_marker.as_deref().filter(|marker| !marker.is_empty()),
                max_keys: max,
            };
            db.list_versions(&bucket, &owner, &query)
        })
        .await?;
    let (mut versions, mut delete_markers) = (Vec::new(), Vec::new());
    for (key, version) in listing.versions {
        let last_modified = Some(timestamp(version.modified_ms));
        match version.object {
            Some(object) => versions.push(ObjectVersion {
                key: Some(encode(&key, url)),
                version_id: Some(version.version_id),
                is_latest: Some(version.is_latest),
                last_modified,
                size: Some(i64::try_from(object.size).unwrap_or(i64::MAX)),
                e_tag: Some(ETag::Strong(object.etag)),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                ..Default::default()
            }),
            None => delete_markers.push(DeleteMarkerEntry {
                key: Some(encode(&key, url)),
                version_id: Some(version.version_id),
                is_latest: Some(version.is_latest),
                last_modified,
                owner: None,
            }),
        }
    }
    let prefixes =
        listing.prefixes.iter().map(|prefix| CommonPrefix { prefix: Some(encode(prefix, url)) }).collect();
    let (next_key, next_version) = match listing.next {
        Some((key, version)) => (Some(encode(&key, url)), version),
        None => (None, None),
    };
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(encode(input.prefix.as_deref().unwrap_or_default(), url)),
        delimiter: input.delimiter.map(|delimiter| encode(&delimiter, url)),
        key_marker: input.key_marker.map(|marker| encode(&marker, url)),
        version_id_marker: input.version_id_marker,
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(next_key.is_some()),
        next_key_marker: next_key,
        next_version_id_marker: next_version,
        versions: Some(versions),
        delete_markers: Some(delete_markers),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

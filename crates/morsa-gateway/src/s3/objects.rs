//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects; each with version IDs and
//! Object Lock where the bucket has them.

use std::collections::BTreeMap;

use hyper::HeaderMap;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::checksum::{Declared, output_fields};
use crate::db::now_ms;
use crate::gateway::{Gateway, timestamp};
use crate::namespace::{ObjectRecord, RetentionMode};
use crate::reader::{object_body, pieces};

/// The body length a request declares: `x-amz-decoded-content-length` for aws-chunked
/// bodies (their Content-Length counts the framing), else Content-Length.
pub(super) fn declared_length(headers: &HeaderMap, content_length: Option<i64>) -> Option<i64> {
    match headers.get("x-amz-decoded-content-length") {
        Some(value) => value.to_str().ok().and_then(|text| text.trim().parse().ok()),
        None => content_length,
    }
}

pub(super) fn metadata_map(metadata: Option<Metadata>) -> BTreeMap<String, String> {
    metadata.map(|map| map.into_iter().collect()).unwrap_or_default()
}

pub(super) async fn put_object(
    gateway: &Gateway,
    mut req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let owner = gateway.owner(&req)?;
    let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
    // Checked before the body is read, so a refused request stores nothing.
    let settings = gateway.db.bucket_settings(&bucket, &owner)?;
    let lock = super::lock::requested_lock(
        &settings,
        req.input.object_lock_mode.as_ref(),
        req.input.object_lock_retain_until_date.as_ref(),
        req.input.object_lock_legal_hold_status.as_ref(),
    )?;
    // COMPLIANCE data must outlive any account holder's wish: its blobs are permanent.
    let permanent = lock.retention.is_some_and(|retention| retention.mode == RetentionMode::Compliance);
    if req.input.if_match.is_some() || req.input.if_none_match.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Conditional writes are not supported.",
        ));
    }
    let declared = Declared::from_headers(&req.headers)?;
    let length = declared_length(&req.headers, req.input.content_length);
    let trailers = req.trailing_headers.clone();
    let write = gateway.reclaimer.begin();
    let written = gateway
        .write_body_as(
            &write,
            req.input.body.take(),
            length,
            &declared,
            move || trailers.and_then(|trailers| trailers.take()),
            permanent,
        )
        .await?;
    let record = ObjectRecord {
        chunks: written.chunks,
        size: written.size,
        etag: hex::encode(written.md5),
        content_type: req.input.content_type.take(),
        metadata: metadata_map(req.input.metadata.take()),
        modified_ms: now_ms(),
        checksum: written.checksum,
        parts: 0,
    };
    let etag = record.etag.clone();
    let fields = output_fields(record.checksum.as_ref());
    let version_id =
        gateway.blocking(move |db| db.write_object(&bucket, &key, &owner, &record, lock)).await?;
    drop(write);
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(etag)),
        version_id,
        checksum_crc32: fields.checksum_crc32,
        checksum_crc32c: fields.checksum_crc32c,
        checksum_crc64nvme: fields.checksum_crc64nvme,
        checksum_sha1: fields.checksum_sha1,
        checksum_sha256: fields.checksum_sha256,
        ..Default::default()
    }))
}

/// The conditional headers of a read.
pub(super) struct Conditions<'a> {
    pub(super) if_match: Option<&'a ETagCondition>,
    pub(super) if_none_match: Option<&'a ETagCondition>,
    pub(super) if_modified_since: Option<&'a Timestamp>,
    pub(super) if_unmodified_since: Option<&'a Timestamp>,
}

impl Conditions<'_> {
    /// `PreconditionFailed` or `NotModified` if the object does not meet them (RFC 9110's
    /// order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since).
    pub(super) fn check(&self, record: &ObjectRecord) -> S3Result<()> {
        let etag = ETag::Strong(record.etag.clone());
        let matches = |condition: &ETagCondition| match condition {
            ETagCondition::Any => true,
            ETagCondition::ETag(tag) => tag.value() == etag.value(),
        };
        let modified = time::OffsetDateTime::from(timestamp(record.modified_ms));
        let seconds = |stamp: &Timestamp| time::OffsetDateTime::from(stamp.clone()).unix_timestamp();
        if let Some(condition) = self.if_match
            && !matches(condition)
        {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed));
        }
        if self.if_match.is_none()
            && let Some(since) = self.if_unmodified_since
            && modified.unix_timestamp() > seconds(since)
        {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed));
        }
        if let Some(condition) = self.if_none_match {
            if matches(condition) {
                return Err(S3Error::new(S3ErrorCode::NotModified));
            }
        } else if let Some(since) = self.if_modified_since
            && modified.unix_timestamp() <= seconds(since)
        {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
        Ok(())
    }
}

/// The bytes of `record` a read wants and the Content-Range header, if it is a range.
fn wanted(record: &ObjectRecord, range: Option<&Range>) -> S3Result<(std::ops::Range<u64>, Option<String>)> {
    match range {
        None => Ok((0..record.size, None)),
        Some(range) => {
            let bytes = range.check(record.size)?;
            let header = format!("bytes {}-{}/{}", bytes.start, bytes.end.saturating_sub(1), record.size);
            Ok((bytes, Some(header)))
        }
    }
}

fn content_length(range: &std::ops::Range<u64>) -> i64 {
    i64::try_from(range.end - range.start).unwrap_or(i64::MAX)
}

pub(super) async fn get_object(
    gateway: &Gateway,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let owner = gateway.owner(&req)?;
    let input = &req.input;
    if input.part_number.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "partNumber reads are not supported.",
        ));
    }
    let found = gateway.db.find_object(&input.bucket, &input.key, &owner, input.version_id.as_deref())?;
    let record = found.object;
    Conditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    }
    .check(&record)?;
    let lock = super::lock::lock_fields(&found.lock, found.object_lock);
    let (bytes, content_range) = wanted(&record, input.range.as_ref())?;
    // Checksums describe the whole object: given only for a whole read that asks for them.
    let with_checksum = content_range.is_none() && input.checksum_mode.is_some();
    let fields = output_fields(record.checksum.as_ref().filter(|_| with_checksum));
    let body = object_body(gateway.chunk_reader(), pieces(&record.chunks, bytes.clone())).await?;
    Ok(S3Response::new(GetObjectOutput {
        body: Some(body),
        content_length: Some(content_length(&bytes)),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(ETag::Strong(record.etag)),
        last_modified: Some(timestamp(record.modified_ms)),
        content_type: record.content_type,
        metadata: Some(record.metadata.into_iter().collect()),
        checksum_crc32: fields.checksum_crc32,
        checksum_crc32c: fields.checksum_crc32c,
        checksum_crc64nvme: fields.checksum_crc64nvme,
        checksum_sha1: fields.checksum_sha1,
        checksum_sha256: fields.checksum_sha256,
        parts_count: (record.parts > 0).then(|| i32::try_from(record.parts).unwrap_or(i32::MAX)),
        version_id: found.version_id,
        object_lock_mode: lock.mode,
        object_lock_retain_until_date: lock.until,
        object_lock_legal_hold_status: lock.legal_hold,
        ..Default::default()
    }))
}

pub(super) async fn head_object(
    gateway: &Gateway,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let owner = gateway.owner(&req)?;
    let input = &req.input;
    let found = gateway.db.find_object(&input.bucket, &input.key, &owner, input.version_id.as_deref())?;
    let record = found.object;
    Conditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    }
    .check(&record)?;
    let lock = super::lock::lock_fields(&found.lock, found.object_lock);
    let (bytes, content_range) = wanted(&record, input.range.as_ref())?;
    let with_checksum = content_range.is_none() && input.checksum_mode.is_some();
    let fields = output_fields(record.checksum.as_ref().filter(|_| with_checksum));
    Ok(S3Response::new(HeadObjectOutput {
        content_length: Some(content_length(&bytes)),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(ETag::Strong(record.etag)),
        last_modified: Some(timestamp(record.modified_ms)),
        content_type: record.content_type,
        metadata: Some(record.metadata.into_iter().collect()),
        checksum_crc32: fields.checksum_crc32,
        checksum_crc32c: fields.checksum_crc32c,
        checksum_crc64nvme: fields.checksum_crc64nvme,
        checksum_sha1: fields.checksum_sha1,
        checksum_sha256: fields.checksum_sha256,
        parts_count: (record.parts > 0).then(|| i32::try_from(record.parts).unwrap_or(i32::MAX)),
        version_id: found.version_id,
        object_lock_mode: lock.mode,
        object_lock_retain_until_date: lock.until,
        object_lock_legal_hold_status: lock.legal_hold,
        ..Default::default()
    }))
}

pub(super) async fn delete_object(
    gateway: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let bypass = input.bypass_governance_retention == Some(true);
    let (bucket, key, version) = (input.bucket, input.key, input.version_id);
    let removal = gateway
        .blocking(move |db| db.remove_object(&bucket, &key, &owner, version.as_deref(), bypass))
        .await?;
    // The object's blobs may be named by nothing now.
    gateway.reclaimer.wake();
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: removal.delete_marker.then_some(true),
        version_id: removal.version_id,
        ..Default::default()
    }))
}

pub(super) async fn delete_objects(
    gateway: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let owner = gateway.owner(&req)?;
    let bucket = req.input.bucket;
    gateway.db.owned_bucket(&bucket, &owner)?;
    let quiet = req.input.delete.quiet == Some(true);
    let bypass = req.input.bypass_governance_retention == Some(true);
    let objects: Vec<(String, Option<String>)> =
        req.input.delete.objects.into_iter().map(|object| (object.key, object.version_id)).collect();
    let outcomes = gateway
        .blocking(move |db| {
            Ok(objects
                .into_iter()
                .map(|(key, version)| {
                    let outcome = db.remove_object(&bucket, &key, &owner, version.as_deref(), bypass);
                    (key, version, outcome)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    gateway.reclaimer.wake();
    let (mut deleted, mut errors) = (Vec::new(), Vec::new());
    for (key, version, outcome) in outcomes {
        match outcome {
            Ok(_) if quiet => {}
            Ok(removal) => deleted.push(DeletedObject {
                key: Some(key),
                version_id: version,
                delete_marker: removal.delete_marker.then_some(true),
                delete_marker_version_id: removal.version_id.filter(|_| removal.delete_marker),
            }),
            Err(error) => errors.push(Error {
                code: Some(error.s3_code().as_str().to_string()),
                message: Some(error.to_string()),
                key: Some(key),
                version_id: version,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}

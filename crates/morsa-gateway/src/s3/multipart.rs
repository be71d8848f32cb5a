//! Multipart uploads: CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload,
//! AbortMultipartUpload. Each part is stored as chunk blobs of its own; the object's layout
//! is its parts' chunks in order, recorded in the same transaction that ends the upload
//! (parts are not rewritten into full chunks: see "Multipart uploads" in docs/GATEWAY.md).
//! A part has at most [`crate::namespace::MAX_BODY_SIZE`] bytes and an object at most
//! [`MAX_OBJECT_SIZE`], so a layout has at most 10,000 + 5 TiB / chunk size chunks.

use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::objects::{declared_length, metadata_map};
use crate::GatewayError;
use crate::checksum::{Declared, output_fields};
use crate::db::now_ms;
use crate::gateway::{Gateway, timestamp};
use crate::namespace::{
    MAX_OBJECT_SIZE, MIN_PART_SIZE, ObjectRecord, PartRecord, RetentionMode, UploadRecord,
};

/// S3's part numbers.
const PART_NUMBERS: std::ops::RangeInclusive<i32> = 1..=10_000;

pub(super) async fn create(
    gateway: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let settings = gateway.db.bucket_settings(&input.bucket, &owner)?;
    // The lock is decided now, as for a PUT: the parts of a COMPLIANCE upload are permanent.
    let lock = super::lock::requested_lock(
        &settings,
        input.object_lock_mode.as_ref(),
        input.object_lock_retain_until_date.as_ref(),
        input.object_lock_legal_hold_status.as_ref(),
    )?;
    let record = UploadRecord {
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        content_type: input.content_type,
        metadata: metadata_map(input.metadata),
        created_ms: now_ms(),
    };
    let upload_id = gateway.blocking(move |db| db.create_locked_upload(&owner, &record, lock)).await?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(upload_id),
        ..Default::default()
    }))
}

pub(super) async fn upload_part(
    gateway: &Gateway,
    mut req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let owner = gateway.owner(&req)?;
    let number = part_number(req.input.part_number)?;
    let (bucket, key, id) = (req.input.bucket.clone(), req.input.key.clone(), req.input.upload_id.clone());
    // Checked before the body is read, so a refused part stores nothing.
    gateway.db.get_upload(&id, &bucket, &key, &owner)?;
    let retention = gateway.db.upload_lock(&id)?.retention;
    let permanent = retention.is_some_and(|retention| retention.mode == RetentionMode::Compliance);
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
    let part = PartRecord {
        chunks: written.chunks,
        size: written.size,
        md5_hex: hex::encode(written.md5),
        checksum: written.checksum,
        modified_ms: now_ms(),
    };
    let etag = part.md5_hex.clone();
    let fields = output_fields(part.checksum.as_ref());
    gateway.blocking(move |db| db.put_part(&id, number, &bucket, &key, &owner, &part)).await?;
    drop(write);
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(etag)),
        checksum_crc32: fields.checksum_crc32,
        checksum_crc32c: fields.checksum_crc32c,
        checksum_crc64nvme: fields.checksum_crc64nvme,
        checksum_sha1: fields.checksum_sha1,
        checksum_sha256: fields.checksum_sha256,
        ..Default::default()
    }))
}

pub(super) async fn list_parts(
    gateway: &Gateway,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let (bucket, key, id) = (input.bucket.clone(), input.key.clone(), input.upload_id.clone());
    let parts = gateway.blocking(move |db| db.list_parts(&id, &bucket, &key, &owner)).await?;
    let marker = input.part_number_marker.and_then(|marker| u32::try_from(marker).ok()).unwrap_or(0);
    let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
    let mut remaining = parts.into_iter().filter(|(number, _)| *number > marker).peekable();
    let mut listed = Vec::new();
    while listed.len() < max
        && let Some((number, part)) = remaining.next()
    {
        listed.push((number, part));
    }
    let truncated = remaining.peek().is_some();
    let next = listed.last().map(|(number, _)| *number);
    let parts = listed
        .into_iter()
        .map(|(number, part)| {
            let fields = output_fields(part.checksum.as_ref());
            Part {
                part_number: i32::try_from(number).ok(),
                size: i64::try_from(part.size).ok(),
                e_tag: Some(ETag::Strong(part.md5_hex)),
                last_modified: Some(timestamp(part.modified_ms)),
                checksum_crc32: fields.checksum_crc32,
                checksum_crc32c: fields.checksum_crc32c,
                checksum_crc64nvme: fields.checksum_crc64nvme,
                checksum_sha1: fields.checksum_sha1,
                checksum_sha256: fields.checksum_sha256,
            }
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        parts: Some(parts),
        is_truncated: Some(truncated),
        next_part_number_marker: next.filter(|_| truncated).and_then(|n| i32::try_from(n).ok()),
        max_parts: Some(i32::try_from(max).unwrap_or(1000)),
        ..Default::default()
    }))
}

/// A part number as S3 allows it (1 to 10,000).
pub(super) fn part_number(number: i32) -> S3Result<u32> {
    PART_NUMBERS.contains(&number).then(|| u32::try_from(number).ok()).flatten().ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "Part number must be from 1 to 10000.")
    })
}

/// An ETag as clients send it back, without quotes.
fn bare(etag: &ETag) -> &str {
    etag.value().trim_matches('"')
}

pub(super) async fn complete(
    gateway: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let (bucket, key, id) = (input.bucket.clone(), input.key.clone(), input.upload_id.clone());
    let asked = input.multipart_upload.and_then(|upload| upload.parts).unwrap_or_default();
    if asked.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "The completion names no parts."));
    }
    // Begun before the parts are read: their blobs are held until the object names them.
    let write = gateway.reclaimer.begin();
    let upload = gateway.db.get_upload(&id, &bucket, &key, &owner)?;
    let stored = gateway.db.list_parts(&id, &bucket, &key, &owner)?;
    let mut previous = 0;
    let mut chunks = Vec::new();
    let mut md5s = Md5::new();
    let mut size = 0;
    for (index, asked_part) in asked.iter().enumerate() {
        let number = asked_part.part_number.unwrap_or(0);
        if number <= previous {
            return Err(GatewayError::InvalidPartOrder.into());
        }
        previous = number;
        let part = u32::try_from(number)
            .ok()
            .and_then(|number| stored.iter().find(|(stored, _)| *stored == number))
            .map(|(_, part)| part)
            .filter(|part| asked_part.e_tag.as_ref().is_none_or(|etag| bare(etag) == part.md5_hex))
            .ok_or(GatewayError::InvalidPart(number))?;
        if index + 1 < asked.len() && part.size < MIN_PART_SIZE {
            return Err(GatewayError::EntityTooSmall { part: number, size: part.size }.into());
        }
        let md5 = hex::decode(&part.md5_hex).map_err(|_| GatewayError::InvalidPart(number))?;
        md5s.update(&md5);
        chunks.extend(part.chunks.iter().cloned());
        size += part.size;
    }
    if size > MAX_OBJECT_SIZE {
        return Err(S3Error::with_message(
            S3ErrorCode::EntityTooLarge,
            format!("The parts add up to {size} bytes; an object has at most {MAX_OBJECT_SIZE}."),
        ));
    }
    write.hold(chunks.iter().map(|chunk| chunk.blob_id))?;
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), asked.len());
    let record = ObjectRecord {
        chunks,
        size,
        etag: etag.clone(),
        content_type: upload.content_type,
        metadata: upload.metadata,
        modified_ms: now_ms(),
        checksum: None,
        parts: u32::try_from(asked.len()).unwrap_or(u32::MAX),
    };
    let location = format!("/{bucket}/{key}");
    let version_id =
        gateway.blocking(move |db| db.finish_upload(&id, &bucket, &key, &owner, Some(&record))).await?;
    // The parts the completion left out are named by nothing now (the guard's end wakes a pass).
    drop(write);
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        version_id,
        bucket: Some(input.bucket),
        key: Some(input.key),
        e_tag: Some(ETag::Strong(etag)),
        location: Some(location),
        ..Default::default()
    }))
}

pub(super) async fn abort(
    gateway: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let (bucket, key, id) = (input.bucket, input.key, input.upload_id);
    gateway.blocking(move |db| db.finish_upload(&id, &bucket, &key, &owner, None)).await?;
    gateway.reclaimer.wake();
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

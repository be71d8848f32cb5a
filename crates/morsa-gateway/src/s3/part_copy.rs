//! UploadPartCopy: a part of a multipart upload made of (a range of) an object the caller
//! can read. A whole source stored by one PUT (its ETag is its MD5, which is the part's)
//! becomes a part naming the source's chunk blobs, with no byte moved, as CopyObject does;
//! any other copy (a range, a multipart source, whose parts' MD5s do not give the whole's, or
//! a part of a COMPLIANCE upload, whose blobs must be its own permanent ones) is read through
//! the gateway and stored as new chunk blobs, streamed with bounded memory like an UploadPart.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::objects::Conditions;
use crate::checksum::Declared;
use crate::db::now_ms;
use crate::gateway::{Gateway, timestamp};
use crate::namespace::{MAX_BODY_SIZE, ObjectRecord, PartRecord, RetentionMode};
use crate::reader::{object_body, pieces};

pub(super) async fn upload_part_copy(
    gateway: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let number = super::multipart::part_number(input.part_number)?;
    let (bucket, key, id) = (input.bucket.clone(), input.key.clone(), input.upload_id.clone());
    gateway.db.get_upload(&id, &bucket, &key, &owner)?;
    let retention = gateway.db.upload_lock(&id)?.retention;
    let permanent = retention.is_some_and(|retention| retention.mode == RetentionMode::Compliance);
    let CopySource::Bucket { bucket: source_bucket, key: source_key, version_id: source_version } =
        &input.copy_source
    else {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Copies from access points and outposts are not supported.",
        ));
    };
    // Begun before the source is read: the blobs it shares are held until the part names them.
    let write = gateway.reclaimer.begin();
    let source = gateway.db.find_object(source_bucket, source_key, &owner, source_version.as_deref())?;
    Conditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    }
    .check(&source.object)
    .map_err(|_| S3Error::with_message(S3ErrorCode::PreconditionFailed, "The copy source does not match."))?;
    let object = source.object;
    let range = match input.copy_source_range.as_deref() {
        Some(text) => copy_range(text, object.size)?,
        None => 0..object.size,
    };
    if range.end - range.start > MAX_BODY_SIZE {
        return Err(S3Error::with_message(
            S3ErrorCode::EntityTooLarge,
            format!("A copied part has at most {MAX_BODY_SIZE} bytes."),
        ));
    }
    let part = match shared_md5(&object, &range, permanent) {
        Some(md5_hex) => {
            write.hold(object.chunks.iter().map(|chunk| chunk.blob_id))?;
            PartRecord {
                chunks: object.chunks,
                size: object.size,
                md5_hex,
                checksum: None,
                modified_ms: now_ms(),
            }
        }
        None => {
            let length = i64::try_from(range.end - range.start).ok();
            let body = object_body(gateway.chunk_reader(), pieces(&object.chunks, range)).await?;
            let written = gateway
                .write_body_as(&write, Some(body), length, &Declared::default(), || None, permanent)
                .await?;
            PartRecord {
                chunks: written.chunks,
                size: written.size,
                md5_hex: hex::encode(written.md5),
                checksum: None,
                modified_ms: now_ms(),
            }
        }
    };
    let result = CopyPartResult {
        e_tag: Some(ETag::Strong(part.md5_hex.clone())),
        last_modified: Some(timestamp(part.modified_ms)),
        ..Default::default()
    };
    gateway.blocking(move |db| db.put_part(&id, number, &bucket, &key, &owner, &part)).await?;
    drop(write);
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(result),
        copy_source_version_id: source.version_id,
        ..Default::default()
    }))
}

/// The source's MD5 (hex) when the part can name its chunk blobs: the whole object, stored by
/// one PUT (an ETag of 32 hex digits), for an upload that is not COMPLIANCE.
fn shared_md5(object: &ObjectRecord, range: &std::ops::Range<u64>, permanent: bool) -> Option<String> {
    let whole = range.start == 0 && range.end == object.size;
    let md5 =
        object.parts == 0 && object.etag.len() == 32 && object.etag.bytes().all(|b| b.is_ascii_hexdigit());
    (whole && md5 && !permanent).then(|| object.etag.clone())
}

/// The bytes `x-amz-copy-source-range: bytes=FIRST-LAST` names (both given, inclusive, within
/// the source).
fn copy_range(text: &str, size: u64) -> S3Result<std::ops::Range<u64>> {
    let bounds = text.strip_prefix("bytes=").and_then(|rest| rest.split_once('-'));
    let parsed =
        bounds.and_then(|(first, last)| Some((first.parse::<u64>().ok()?, last.parse::<u64>().ok()?)));
    match parsed {
        Some((first, last)) if first <= last && last < size => Ok(first..last + 1),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("The x-amz-copy-source-range {text:?} is not a range of the source's {size} bytes."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_range_is_inclusive_and_within_the_source() {
        assert_eq!(copy_range("bytes=0-9", 10).unwrap(), 0..10);
        assert_eq!(copy_range("bytes=5-5", 10).unwrap(), 5..6);
        for bad in ["bytes=0-10", "bytes=5-4", "bytes=-5", "bytes=3-", "0-5", "bytes=a-b"] {
            assert!(copy_range(bad, 10).is_err(), "{bad}");
        }
    }
}

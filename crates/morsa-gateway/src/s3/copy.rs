//! CopyObject without moving data: the copy names the same chunk blobs as its source (a
//! layout is immutable once recorded, so sharing it is safe), with the source's metadata
//! (`x-amz-metadata-directive: COPY`, the default) or the request's (`REPLACE`). Within and
//! across buckets of the same user; the source may be a version (`?versionId=`).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::objects::{Conditions, metadata_map};
use crate::checksum::output_fields;
use crate::db::now_ms;
use crate::gateway::{Gateway, timestamp};
use crate::namespace::ObjectRecord;

pub(super) async fn copy_object(
    gateway: &Gateway,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let CopySource::Bucket { bucket: source_bucket, key: source_key, version_id: source_version } =
        &input.copy_source
    else {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Copies from access points and outposts are not supported.",
        ));
    };
    // Begun before the source is read: its blobs are held until the copy names them.
    let write = gateway.reclaimer.begin();
    let source = gateway.db.find_object(source_bucket, source_key, &owner, source_version.as_deref())?;
    write.hold(source.object.chunks.iter().map(|chunk| chunk.blob_id))?;
    Conditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    }
    .check(&source.object)
    // A copy whose source does not match is refused, never "not modified".
    .map_err(|_| S3Error::with_message(S3ErrorCode::PreconditionFailed, "The copy source does not match."))?;
    let settings = gateway.db.bucket_settings(&input.bucket, &owner)?;
    let lock = super::lock::requested_lock(
        &settings,
        input.object_lock_mode.as_ref(),
        input.object_lock_retain_until_date.as_ref(),
        input.object_lock_legal_hold_status.as_ref(),
    )?;
    let replace = match input.metadata_directive.as_ref().map(MetadataDirective::as_str) {
        None | Some(MetadataDirective::COPY) => false,
        Some(MetadataDirective::REPLACE) => true,
        Some(other) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Unknown metadata directive {other:?}: use COPY or REPLACE."),
            ));
        }
    };
    let onto_itself =
        **source_bucket == *input.bucket && **source_key == *input.key && source_version.is_none();
    if onto_itself && !replace && settings.versioning == crate::namespace::Versioning::Unversioned {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing \
             the object's metadata.",
        ));
    }
    let object = source.object;
    let (content_type, metadata) = match replace {
        true => (input.content_type, metadata_map(input.metadata)),
        false => (object.content_type, object.metadata),
    };
    let record = ObjectRecord {
        chunks: object.chunks,
        size: object.size,
        etag: object.etag,
        content_type,
        metadata,
        modified_ms: now_ms(),
        checksum: object.checksum,
        parts: object.parts,
    };
    let fields = output_fields(record.checksum.as_ref());
    let result = CopyObjectResult {
        e_tag: Some(ETag::Strong(record.etag.clone())),
        last_modified: Some(timestamp(record.modified_ms)),
        checksum_type: None,
        checksum_crc32: fields.checksum_crc32,
        checksum_crc32c: fields.checksum_crc32c,
        checksum_crc64nvme: fields.checksum_crc64nvme,
        checksum_sha1: fields.checksum_sha1,
        checksum_sha256: fields.checksum_sha256,
    };
    let (bucket, key) = (input.bucket, input.key);
    let version_id =
        gateway.blocking(move |db| db.write_object(&bucket, &key, &owner, &record, lock)).await?;
    drop(write);
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(result),
        version_id,
        copy_source_version_id: source.version_id,
        ..Default::default()
    }))
}

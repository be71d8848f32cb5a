//! ListObjects (V1) and ListObjectsV2.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::gateway::{Gateway, timestamp};
use crate::listing::{ListQuery, Listing};
use crate::namespace::ObjectRecord;

/// Most entries a page holds, as in S3.
pub(super) const MAX_KEYS: i32 = 1000;

pub(super) fn max_keys(asked: Option<i32>) -> usize {
    usize::try_from(asked.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS)).unwrap_or(0)
}

/// Whether names are to be URL-encoded (`encoding-type=url`, which aws cli sends).
pub(super) fn url_encoded(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|encoding| encoding.as_str().eq_ignore_ascii_case("url"))
}

/// Percent-encodes all but unreserved characters and `/`.
pub(super) fn encode(text: &str, url: bool) -> String {
    if !url {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn contents(listing: &Listing<ObjectRecord>, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = listing
        .objects
        .iter()
        .map(|(key, record)| Object {
            key: Some(encode(key, url)),
            size: Some(i64::try_from(record.size).unwrap_or(i64::MAX)),
            e_tag: Some(ETag::Strong(record.etag.clone())),
            last_modified: Some(timestamp(record.modified_ms)),
            storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    let prefixes =
        listing.prefixes.iter().map(|prefix| CommonPrefix { prefix: Some(encode(prefix, url)) }).collect();
    (objects, prefixes)
}

async fn run(
    gateway: &Gateway,
    owner: String,
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    after: Option<String>,
    max_keys: usize,
) -> S3Result<Listing<ObjectRecord>> {
    gateway
        .blocking(move |db| {
            let query = ListQuery {
                prefix: &prefix,
                delimiter: delimiter.as_deref(),
                after: after.as_deref(),
                max_keys,
            };
            db.list_objects(&bucket, &owner, &query)
        })
        .await
}

pub(super) async fn list_objects(
    gateway: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let url = url_encoded(input.encoding_type.as_ref());
    let prefix = input.prefix.clone().unwrap_or_default();
    let listing = run(
        gateway,
        owner,
        input.bucket.clone(),
        prefix.clone(),
        input.delimiter.clone(),
        input.marker.clone(),
        max_keys(input.max_keys),
    )
    .await?;
    let (objects, prefixes) = contents(&listing, url);
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(encode(&prefix, url)),
        marker: input.marker.map(|marker| encode(&marker, url)),
        delimiter: input.delimiter.map(|delimiter| encode(&delimiter, url)),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(listing.next.is_some()),
        next_marker: listing.next.map(|next| encode(&next, url)),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

pub(super) async fn list_objects_v2(
    gateway: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let url = url_encoded(input.encoding_type.as_ref());
    let after = match &input.continuation_token {
        Some(token) => Some(
            TOKEN.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
                S3Error::with_message(S3ErrorCode::InvalidArgument, "The continuation token is not valid.")
            })?,
        ),
        None => input.start_after.clone(),
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let listing = run(
        gateway,
        owner,
        input.bucket.clone(),
        prefix.clone(),
        input.delimiter.clone(),
        after,
        max_keys(input.max_keys),
    )
    .await?;
    let (objects, prefixes) = contents(&listing, url);
    let key_count = i32::try_from(objects.len() + prefixes.len()).unwrap_or(i32::MAX);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(encode(&prefix, url)),
        delimiter: input.delimiter.map(|delimiter| encode(&delimiter, url)),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        key_count: Some(key_count),
        continuation_token: input.continuation_token,
        start_after: input.start_after.map(|after| encode(&after, url)),
        is_truncated: Some(listing.next.is_some()),
        next_continuation_token: listing.next.map(|next| TOKEN.encode(next)),
        contents: Some(objects),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved_characters() {
        assert_eq!(encode("a b/c+d%é", true), "a%20b/c%2Bd%25%C3%A9");
        assert_eq!(encode("a b", false), "a b");
    }
}

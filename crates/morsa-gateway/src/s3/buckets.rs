//! ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use crate::gateway::{Gateway, timestamp};
use crate::namespace::{BucketSettings, Versioning};

pub(super) async fn list_buckets(
    gateway: &Gateway,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let owner = gateway.owner(&req)?;
    let name = owner.clone();
    let list = gateway.blocking(move |db| db.list_buckets(&name)).await?;
    let buckets = list
        .into_iter()
        .map(|(name, record)| Bucket {
            name: Some(name),
            creation_date: Some(timestamp(record.created_ms)),
            bucket_region: Some(gateway.region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(Owner { display_name: Some(owner.clone()), id: Some(owner) }),
        ..Default::default()
    }))
}

pub(super) async fn create_bucket(
    gateway: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let owner = gateway.owner(&req)?;
    // Object Lock keeps versioning on from the start.
    let settings = match req.input.object_lock_enabled_for_bucket == Some(true) {
        true => {
            BucketSettings { versioning: Versioning::Enabled, object_lock: true, default_retention: None }
        }
        false => BucketSettings::default(),
    };
    let bucket = req.input.bucket;
    let location = format!("/{bucket}");
    gateway.blocking(move |db| db.create_bucket_with(&bucket, &owner, &settings)).await?;
    Ok(S3Response::new(CreateBucketOutput { location: Some(location) }))
}

pub(super) async fn head_bucket(
    gateway: &Gateway,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let owner = gateway.owner(&req)?;
    gateway.db.owned_bucket(&req.input.bucket, &owner)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(gateway.region.clone()),
        ..Default::default()
    }))
}

pub(super) async fn delete_bucket(
    gateway: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let owner = gateway.owner(&req)?;
    let bucket = req.input.bucket;
    gateway.blocking(move |db| db.delete_bucket(&bucket, &owner)).await?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(super) async fn get_bucket_location(
    gateway: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let owner = gateway.owner(&req)?;
    gateway.db.owned_bucket(&req.input.bucket, &owner)?;
    // S3 answers an empty constraint for us-east-1.
    let location_constraint =
        (gateway.region != "us-east-1").then(|| BucketLocationConstraint::from(gateway.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
}

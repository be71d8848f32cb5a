//! Object Lock: PutObjectLockConfiguration, GetObjectLockConfiguration, PutObjectRetention,
//! GetObjectRetention, PutObjectLegalHold, GetObjectLegalHold, and the `x-amz-object-lock-*`
//! headers of a write. The rules themselves are [`crate::namespace::lock`]'s.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::GatewayError;
use crate::db::now_ms;
use crate::gateway::{Gateway, timestamp};
use crate::namespace::{BucketSettings, LockState, Retention, RetentionMode};

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.into())
}

/// A mode as S3 spells it.
fn parse_mode(mode: &str) -> S3Result<RetentionMode> {
    match mode {
        "COMPLIANCE" => Ok(RetentionMode::Compliance),
        "GOVERNANCE" => Ok(RetentionMode::Governance),
        other => Err(invalid(format!("Unknown Object Lock mode {other:?}: use COMPLIANCE or GOVERNANCE."))),
    }
}

fn mode_name(mode: RetentionMode) -> &'static str {
    match mode {
        RetentionMode::Compliance => "COMPLIANCE",
        RetentionMode::Governance => "GOVERNANCE",
    }
}

fn ms_of(stamp: &Timestamp) -> S3Result<u64> {
    let nanos = time::OffsetDateTime::from(stamp.clone()).unix_timestamp_nanos() / 1_000_000;
    u64::try_from(nanos).map_err(|_| invalid("The retain-until date is before 1970."))
}

/// A retention given as mode and date, which must lie in the future.
fn retention(mode: &str, until: &Timestamp, now: u64) -> S3Result<Retention> {
    let until_ms = ms_of(until)?;
    if until_ms <= now {
        return Err(invalid("The retain-until date must be in the future."));
    }
    Ok(Retention { mode: parse_mode(mode)?, until_ms })
}

fn legal_hold_on(status: &str) -> S3Result<bool> {
    match status {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        other => Err(invalid(format!("Unknown legal hold status {other:?}: use ON or OFF."))),
    }
}

/// The lock of a version written with these `x-amz-object-lock-*` headers into a bucket with
/// `settings`: the headers' retention, else the bucket's default one.
pub(super) fn requested_lock(
    settings: &BucketSettings,
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    legal_hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<LockState> {
    let now = now_ms();
    let asked = mode.is_some() || until.is_some() || legal_hold.is_some();
    if asked && !settings.object_lock {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Bucket is missing Object Lock Configuration.",
        ));
    }
    let retention = match (mode, until) {
        (Some(mode), Some(until)) => Some(retention(mode.as_str(), until, now)?),
        (None, None) => settings.default_retention.map(|default| default.from(now)),
        _ => {
            return Err(invalid(
                "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date go together.",
            ));
        }
    };
    let legal_hold = legal_hold.map(|status| legal_hold_on(status.as_str())).transpose()?.unwrap_or(false);
    Ok(LockState { retention, legal_hold })
}

/// The lock fields of a GetObject or HeadObject answer.
pub(super) struct LockFields {
    pub mode: Option<ObjectLockMode>,
    pub until: Option<Timestamp>,
    pub legal_hold: Option<ObjectLockLegalHoldStatus>,
}

pub(super) fn lock_fields(lock: &LockState, object_lock: bool) -> LockFields {
    LockFields {
        mode: lock.retention.map(|retention| ObjectLockMode::from_static(mode_name(retention.mode))),
        until: lock.retention.map(|retention| timestamp(retention.until_ms)),
        legal_hold: object_lock
            .then(|| ObjectLockLegalHoldStatus::from_static(if lock.legal_hold { "ON" } else { "OFF" })),
    }
}

pub(super) async fn put_configuration(
    gateway: &Gateway,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let configuration = input.object_lock_configuration.ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::MalformedXML, "No ObjectLockConfiguration given.")
    })?;
    if configuration.object_lock_enabled.as_ref().is_some_and(|enabled| enabled.as_str() != "Enabled") {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "ObjectLockEnabled must be Enabled."));
    }
    let default = match configuration.rule.and_then(|rule| rule.default_retention) {
        None => None,
        Some(DefaultRetention { mode, days, years }) => {
            let mode = parse_mode(mode.as_ref().map_or("", |mode| mode.as_str()))?;
            let days = match (days, years) {
                (Some(days), None) => days,
                (None, Some(years)) => years.saturating_mul(365),
                _ => return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "Give Days or Years.")),
            };
            let days = u32::try_from(days)
                .ok()
                .filter(|days| *days > 0)
                .ok_or_else(|| invalid("The default retention period must be positive."))?;
            Some(crate::namespace::DefaultRetention { mode, days })
        }
    };
    let bucket = input.bucket;
    gateway
        .blocking(move |db| {
            db.update_bucket_settings(&bucket, &owner, |settings| {
                if !settings.object_lock && settings.versioning != crate::namespace::Versioning::Enabled {
                    return Err(GatewayError::InvalidBucketState(
                        "Versioning must be enabled before Object Lock is turned on.".into(),
                    ));
                }
                settings.object_lock = true;
                settings.default_retention = default;
                Ok(())
            })
        })
        .await?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub(super) async fn get_configuration(
    gateway: &Gateway,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let owner = gateway.owner(&req)?;
    let bucket = req.input.bucket;
    let settings = gateway.db.bucket_settings(&bucket, &owner)?;
    if !settings.object_lock {
        return Err(GatewayError::NoObjectLockConfiguration(bucket).into());
    }
    let rule = settings.default_retention.map(|default| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            mode: Some(ObjectLockRetentionMode::from_static(mode_name(default.mode))),
            days: i32::try_from(default.days).ok(),
            years: None,
        }),
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    }))
}

pub(super) async fn put_retention(
    gateway: &Gateway,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let now = now_ms();
    let new = match input.retention {
        Some(ObjectLockRetention { mode: Some(mode), retain_until_date: Some(until) }) => {
            Some(retention(mode.as_str(), &until, now)?)
        }
        Some(ObjectLockRetention { mode: None, retain_until_date: None }) | None => None,
        Some(_) => {
            return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "Give Mode and RetainUntilDate."));
        }
    };
    let bypass = input.bypass_governance_retention == Some(true);
    let (bucket, key, version) = (input.bucket, input.key, input.version_id);
    gateway
        .blocking(move |db| {
            db.update_lock(&bucket, &key, &owner, version.as_deref(), |lock| {
                lock.retention_change(new, now, bypass)
                    .map_err(|reason| GatewayError::Locked { key: key.clone(), reason })?;
                lock.retention = new;
                Ok(())
            })
        })
        .await?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub(super) async fn get_retention(
    gateway: &Gateway,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let owner = gateway.owner(&req)?;
    let input = &req.input;
    let found = gateway.db.find_object(&input.bucket, &input.key, &owner, input.version_id.as_deref())?;
    let retention = found.lock.retention.ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::NoSuchObjectLockConfiguration, "The object has no retention.")
    })?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from_static(mode_name(retention.mode))),
            retain_until_date: Some(timestamp(retention.until_ms)),
        }),
    }))
}

pub(super) async fn put_legal_hold(
    gateway: &Gateway,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let owner = gateway.owner(&req)?;
    let input = req.input;
    let status = input.legal_hold.and_then(|hold| hold.status);
    let on = legal_hold_on(status.as_ref().map_or("", |status| status.as_str()))?;
    let (bucket, key, version) = (input.bucket, input.key, input.version_id);
    gateway
        .blocking(move |db| {
            db.update_lock(&bucket, &key, &owner, version.as_deref(), |lock| {
                lock.legal_hold = on;
                Ok(())
            })
        })
        .await?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub(super) async fn get_legal_hold(
    gateway: &Gateway,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let owner = gateway.owner(&req)?;
    let input = &req.input;
    if !gateway.db.bucket_settings(&input.bucket, &owner)?.object_lock {
        return Err(
            GatewayError::InvalidRequest("Bucket is missing Object Lock Configuration.".into()).into()
        );
    }
    let found = gateway.db.find_object(&input.bucket, &input.key, &owner, input.version_id.as_deref())?;
    let status = if found.lock.legal_hold { "ON" } else { "OFF" };
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(status)),
        }),
    }))
}

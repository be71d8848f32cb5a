//! Object Lock's rules, pure: when a version may be deleted or overwritten, and how its
//! retention may change. The gateway enforces them; S3 answers a refusal with `AccessDenied`.

use serde::{Deserialize, Serialize};

/// How strictly a retention holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Anyone allowed to delete may do so with `x-amz-bypass-governance-retention: true`.
    Governance,
    /// Nobody deletes the version, and nobody shortens its retention, before it ends.
    Compliance,
}

/// A version's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: RetentionMode,
    /// Until when (ms since the Unix epoch).
    pub until_ms: u64,
}

/// A bucket's default retention, applied to new versions that name none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// The mode.
    pub mode: RetentionMode,
    /// How long, in days (S3's years are 365 days).
    pub days: u32,
}

impl DefaultRetention {
    /// The retention of a version written at `now_ms`.
    pub fn from(&self, now_ms: u64) -> Retention {
        Retention { mode: self.mode, until_ms: now_ms.saturating_add(u64::from(self.days) * 86_400_000) }
    }
}

/// What locks one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// Its retention, if any.
    pub retention: Option<Retention>,
    /// Whether a legal hold is on.
    pub legal_hold: bool,
}

impl Retention {
    /// Whether it still holds at `now_ms`.
    pub fn active(&self, now_ms: u64) -> bool {
        self.until_ms > now_ms
    }
}

impl LockState {
    /// Why the version may not be deleted (or replaced) at `now_ms`, if it may not;
    /// `bypass_governance` is `x-amz-bypass-governance-retention: true`.
    pub fn refusal(&self, now_ms: u64, bypass_governance: bool) -> Option<String> {
        if self.legal_hold {
            return Some("the version is under a legal hold".into());
        }
        let retention = self.retention.filter(|retention| retention.active(now_ms))?;
        match retention.mode {
            RetentionMode::Compliance => {
                Some(format!("the version is under COMPLIANCE retention until {} ms", retention.until_ms))
            }
            RetentionMode::Governance if !bypass_governance => Some(format!(
                "the version is under GOVERNANCE retention until {} ms (send x-amz-bypass-governance-retention: true to override)",
                retention.until_ms
            )),
            RetentionMode::Governance => None,
        }
    }

    /// Whether the retention may become `new` at `now_ms`: an active retention may be
    /// extended (and GOVERNANCE made COMPLIANCE), never shortened or removed, except a
    /// GOVERNANCE one with the bypass.
    pub fn retention_change(
        &self,
        new: Option<Retention>,
        now_ms: u64,
        bypass_governance: bool,
    ) -> Result<(), String> {
        let Some(current) = self.retention.filter(|retention| retention.active(now_ms)) else {
            return Ok(());
        };
        if current.mode == RetentionMode::Governance && bypass_governance {
            return Ok(());
        }
        let kept = new.is_some_and(|new| {
            new.until_ms >= current.until_ms
                && (current.mode == RetentionMode::Governance || new.mode == RetentionMode::Compliance)
        });
        match kept {
            true => Ok(()),
            false => Err(format!(
                "the version's {:?} retention until {} ms may only be extended",
                current.mode, current.until_ms
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn locked(mode: RetentionMode, until_ms: u64) -> LockState {
        LockState { retention: Some(Retention { mode, until_ms }), legal_hold: false }
    }

    #[test]
    fn compliance_refuses_until_its_date_governance_only_without_the_bypass() {
        let compliance = locked(RetentionMode::Compliance, NOW + 1);
        assert!(compliance.refusal(NOW, false).is_some());
        assert!(compliance.refusal(NOW, true).is_some(), "nobody bypasses COMPLIANCE");
        assert!(compliance.refusal(NOW + 1, false).is_none(), "it ends at its date");
        let governance = locked(RetentionMode::Governance, NOW + 1);
        assert!(governance.refusal(NOW, false).is_some());
        assert!(governance.refusal(NOW, true).is_none());
        let held = LockState { retention: None, legal_hold: true };
        assert!(held.refusal(NOW, true).is_some(), "a legal hold has no bypass");
        assert!(LockState::default().refusal(NOW, false).is_none());
    }

    #[test]
    fn an_active_retention_is_only_extended() {
        let compliance = locked(RetentionMode::Compliance, NOW + 100);
        let at = |mode, until_ms| Some(Retention { mode, until_ms });
        assert!(compliance.retention_change(at(RetentionMode::Compliance, NOW + 200), NOW, false).is_ok());
        assert!(compliance.retention_change(at(RetentionMode::Compliance, NOW + 50), NOW, true).is_err());
        assert!(compliance.retention_change(at(RetentionMode::Governance, NOW + 200), NOW, true).is_err());
        assert!(compliance.retention_change(None, NOW, true).is_err());
        assert!(compliance.retention_change(None, NOW + 100, false).is_ok(), "an expired one is free");
        let governance = locked(RetentionMode::Governance, NOW + 100);
        assert!(governance.retention_change(at(RetentionMode::Compliance, NOW + 100), NOW, false).is_ok());
        assert!(governance.retention_change(at(RetentionMode::Governance, NOW + 50), NOW, false).is_err());
        assert!(governance.retention_change(None, NOW, true).is_ok());
    }
}

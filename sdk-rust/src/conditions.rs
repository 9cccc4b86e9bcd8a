//! Status conditions (`metav1.Condition`), kept the way Kubernetes API conventions ask:
//! one entry per type, and `lastTransitionTime` moves only when `status` changes.

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// A condition's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// A condition with `lastTransitionTime` = now and no `observedGeneration` (set it with struct
/// update syntax: `Condition { observed_generation: Some(g), ..new_condition(..) }`).
pub fn new_condition(
    type_: &str,
    status: impl Into<ConditionStatus>,
    reason: &str,
    message: impl Into<String>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.into().as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: None,
        last_transition_time: crate::time::now(),
    }
}

/// Adds `condition`, or replaces the one of the same type. When that one had the same status its
/// `lastTransitionTime` is kept. Returns whether the status changed (true for a new type).
pub fn set(conditions: &mut Vec<Condition>, mut condition: Condition) -> bool {
    match conditions
        .iter_mut()
        .find(|existing| existing.type_ == condition.type_)
    {
        Some(existing) => {
            let status_changed = existing.status != condition.status;
            if !status_changed {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
            status_changed
        }
        None => {
            conditions.push(condition);
            true
        }
    }
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

/// Whether the condition of `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|condition| condition.status == "True")
}

/// Removes the condition of `type_`; returns whether there was one.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|condition| condition.type_ != type_);
    conditions.len() != before
}

use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// Worth telling the user; the configuration is still used.
    Warning,
}

/// Where a problem comes from, for callers that treat ordering problems differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemClass {
    /// The object itself is wrong.
    Invalid,
    /// An object it refers to is missing (MetalLB calls these transient errors).
    MissingReference,
}

/// One problem with one field of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: String,
    pub name: String,
    /// JSON path of the field, such as `spec.addresses[1]`; `metadata.name` for object-level
    /// problems.
    pub field: String,
    pub message: String,
    pub severity: Severity,
    pub class: ProblemClass,
}

impl Problem {
    pub fn error(
        kind: &str,
        name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.to_string(),
            name: name.to_string(),
            field: field.into(),
            message: message.into(),
            severity: Severity::Error,
            class: ProblemClass::Invalid,
        }
    }

    pub fn warning(
        kind: &str,
        name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(kind, name, field, message)
        }
    }

    pub fn missing_reference(
        kind: &str,
        name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            class: ProblemClass::MissingReference,
            ..Self::error(kind, name, field, message)
        }
    }
}

/// `Kind/name: field: message`, the form the `validate` command prints and the webhooks return.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

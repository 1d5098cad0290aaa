//! Non-fatal oddities in a report ("issues"): noted once per kind with a count and the first
//! place they occurred, so a report with ten thousand unnamed classnames yields one line.

/// One kind of oddity, with how often and where it first occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// A short stable identifier (`missing-classname`, `count-tests`, …).
    pub kind: &'static str,
    pub message: &'static str,
    pub count: u64,
    /// XML path of the first occurrence.
    pub path: String,
    pub offset: u64,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let location = if self.path.is_empty() {
            format!("byte {}", self.offset)
        } else {
            format!("{}, byte {}", self.path, self.offset)
        };
        if self.count == 1 {
            write!(f, "{} (at {location})", self.message)
        } else {
            write!(
                f,
                "{} ({} times; first at {location})",
                self.message, self.count
            )
        }
    }
}

/// The issues of one document, in the order their kinds first appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueLog {
    issues: Vec<Issue>,
}

impl IssueLog {
    pub(crate) fn note(
        &mut self,
        kind: &'static str,
        message: &'static str,
        path: &str,
        offset: u64,
    ) {
        if let Some(existing) = self.issues.iter_mut().find(|i| i.kind == kind) {
            existing.count += 1;
            return;
        }
        self.issues.push(Issue {
            kind,
            message,
            count: 1,
            path: path.to_owned(),
            offset,
        });
    }

    /// Counts one more occurrence of `kind` if it was seen before; false when it is new.
    pub(crate) fn bump(&mut self, kind: &str) -> bool {
        match self.issues.iter_mut().find(|i| i.kind == kind) {
            Some(existing) => {
                existing.count += 1;
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    pub fn has(&self, kind: &str) -> bool {
        self.issues.iter().any(|i| i.kind == kind)
    }

    /// One line per kind.
    pub fn lines(&self) -> Vec<String> {
        self.issues.iter().map(ToString::to_string).collect()
    }
}

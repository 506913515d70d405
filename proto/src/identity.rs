//! The host id rule, part of the wire contract: the agent checks its own id with it, the
//! collector every `Hello`, and `fleetctl certs` the name of an agent certificate (its CN is the
//! host id it may stream as).

use std::fmt;

/// Most characters in a host id.
pub const MAX_HOST_ID: usize = 128;

/// Why a host id is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostIdError {
    /// Empty or longer than [`MAX_HOST_ID`].
    Length,
    /// A character outside `[A-Za-z0-9._-]`.
    Char(char),
}

impl fmt::Display for HostIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostIdError::Length => write!(f, "must be 1 to {MAX_HOST_ID} characters"),
            HostIdError::Char(c) => {
                write!(f, "contains {c:?}; use letters, digits, '.', '_' or '-'")
            }
        }
    }
}

impl std::error::Error for HostIdError {}

/// Checks a host id: 1 to [`MAX_HOST_ID`] characters of `[A-Za-z0-9._-]`.
///
/// # Errors
/// [`HostIdError`] saying what is wrong.
pub fn check_host_id(id: &str) -> Result<(), HostIdError> {
    if id.is_empty() || id.len() > MAX_HOST_ID {
        return Err(HostIdError::Length);
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(HostIdError::Char(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids() {
        assert_eq!(check_host_id("web-1.prod_eu"), Ok(()));
        assert_eq!(check_host_id(""), Err(HostIdError::Length));
        assert_eq!(check_host_id(&"a".repeat(129)), Err(HostIdError::Length));
        assert_eq!(check_host_id(&"a".repeat(128)), Ok(()));
        assert_eq!(check_host_id("web 1"), Err(HostIdError::Char(' ')));
        assert_eq!(check_host_id("wéb"), Err(HostIdError::Char('é')));
        assert_eq!(
            HostIdError::Char('/').to_string(),
            "contains '/'; use letters, digits, '.', '_' or '-'"
        );
    }
}

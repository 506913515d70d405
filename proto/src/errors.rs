//! Errors in words, with their causes: the top-level message of a transport error ("transport
//! error", "client error (Connect)") says little, the cause ("certificate expired", "connection
//! refused") says what to fix.

/// An error and its causes on one line, `outer: cause: root cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    with_causes(e.to_string(), e.source())
}

/// A gRPC status in words, `Code: message: causes` (a refused TLS handshake reads "transport
/// error" alone without its causes).
pub fn status(s: &tonic::Status) -> String {
    with_causes(
        format!("{}: {}", s.code(), s.message()),
        std::error::Error::source(s),
    )
}

/// Appends each cause that the text does not already say (some errors repeat their cause in
/// their own message).
fn with_causes(mut text: String, mut cause: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fmt;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_follow_once_each() {
        let e = E(
            "transport error",
            Some(Box::new(E("connection refused", None))),
        );
        assert_eq!(super::chain(&e), "transport error: connection refused");
        let repeated = E(
            "client error: connection refused",
            Some(Box::new(E("connection refused", None))),
        );
        assert_eq!(super::chain(&repeated), "client error: connection refused");
        let s = tonic::Status::unavailable("collector shutting down");
        assert_eq!(
            super::status(&s),
            "The service is currently unavailable: collector shutting down"
        );
    }
}

//! Byte-level helpers shared by the parsers: splitting into lines and fields, and reading
//! unsigned decimal numbers the way sysstat's `sscanf("%llu")` does, without allocating.
//!
//! Everything here works on `&[u8]` so that a stray non-UTF-8 byte in an interface name cannot
//! make a whole file unreadable.

/// Why a file could not be parsed. Only raised when a field the activity cannot do without is
/// missing; a garbled line is skipped instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The lines of `buf`, without their `\n`.
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    // memchr finds each newline a word at a time: this runs over every byte of every file
    // read each interval.
    let mut rest = buf;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (line, tail) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = tail;
        if !line.is_empty() {
            return Some(line);
        }
    })
}

/// The whitespace-separated fields of `line`.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    Fields(line)
}

/// The fields of a line. A run of spaces (`/proc/net/dev` and `/proc/diskstats` pad their
/// columns with dozens) is skipped in one pass, where splitting at each space would make an
/// empty field of every one of them to be filtered out.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.0;
        let Some(start) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
            self.0 = &[];
            return None;
        };
        let rest = &rest[start..];
        let end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

/// An unsigned decimal number that is the whole of `field`; `None` on anything else (sign,
/// letters, overflow).
pub fn u64_field(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// The next field of `it` as a number.
pub fn next_u64<'a>(it: &mut impl Iterator<Item = &'a [u8]>) -> Option<u64> {
    it.next().and_then(u64_field)
}

/// A `"<int>.<frac>"` field read as sysstat reads it with `"%lu.%lu"`, scaled to hundredths:
/// the kernel always prints two decimals (`0.53`, `12.05`), so `0.53` is 53. A field without a
/// dot is taken as whole units.
pub fn hundredths(field: &[u8]) -> Option<u64> {
    match field.iter().position(|&b| b == b'.') {
        None => u64_field(field)?.checked_mul(100),
        Some(dot) => {
            let int = u64_field(&field[..dot])?;
            let frac = u64_field(&field[dot + 1..])?;
            int.checked_mul(100)?.checked_add(frac)
        }
    }
}

/// If `line` starts with `key`, the rest of the line.
pub fn strip<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(key)
}

/// Replaces the contents of `dst` with `src`, keeping `dst`'s allocation when it is big enough.
/// Invalid UTF-8 is replaced, not rejected.
pub fn set_string(dst: &mut String, src: &[u8]) {
    dst.clear();
    match std::str::from_utf8(src) {
        Ok(s) => dst.push_str(s),
        Err(_) => dst.push_str(&String::from_utf8_lossy(src)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(u64_field(b"0"), Some(0));
        assert_eq!(u64_field(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(u64_field(b"18446744073709551616"), None);
        assert_eq!(u64_field(b"-1"), None);
        assert_eq!(u64_field(b"12a"), None);
        assert_eq!(u64_field(b""), None);
    }

    #[test]
    fn hundredths_like_sysstat() {
        assert_eq!(hundredths(b"0.53"), Some(53));
        assert_eq!(hundredths(b"12.05"), Some(1205));
        assert_eq!(hundredths(b"3"), Some(300));
        assert_eq!(hundredths(b"x.10"), None);
    }

    #[test]
    fn splitting() {
        let l: Vec<_> = lines(b"a b\n\nc\n").collect();
        assert_eq!(l, vec![&b"a b"[..], &b"c"[..]]);
        // No final newline, blank lines anywhere, nothing at all.
        let l: Vec<_> = lines(b"\n\nx\n\ny").collect();
        assert_eq!(l, vec![&b"x"[..], &b"y"[..]]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"\n\n").count(), 0);
        let f: Vec<_> = fields(b"  cpu0   1 2\t3 ").collect();
        assert_eq!(f, vec![&b"cpu0"[..], b"1", b"2", b"3"]);
        assert_eq!(fields(b"").count(), 0);
        assert_eq!(fields(b" \t\r ").count(), 0);
        let f: Vec<_> = fields(b"x\r\x0cy\x0bz").collect();
        assert_eq!(
            f,
            vec![&b"x"[..], b"y\x0bz"],
            "the whitespace of is_ascii_whitespace"
        );
        let mut it = fields(b"a ");
        assert_eq!(
            (it.next(), it.next(), it.next()),
            (Some(&b"a"[..]), None, None)
        );
    }
}

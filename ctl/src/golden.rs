//! Golden files for the rendering tests: the exact text a command prints for a fixed answer,
//! kept in `ctl/tests/golden/NAME` (`COMMAND-CASE.txt` for tables, `.json` and `.csv` for the
//! other formats).
//!
//! [`check`] fails with a line diff when the output differs from the file. To accept a change
//! of output on purpose, regenerate the files and review the diff in git:
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p fleetctl
//! git diff ctl/tests/golden
//! ```

use std::path::PathBuf;

/// The environment variable that makes [`check`] write the files instead of comparing.
const UPDATE: &str = "UPDATE_GOLDEN";

/// The directory of the golden files.
fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Checks `actual` against the golden file `name`; with `UPDATE_GOLDEN=1`, writes it instead.
///
/// # Panics
///
/// When the file is missing or differs (showing a line diff), or cannot be written.
#[track_caller]
pub(crate) fn check(name: &str, actual: &str) {
    let path = dir().join(name);
    if std::env::var_os(UPDATE).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(dir()).expect("create the golden directory");
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let want = match std::fs::read_to_string(&path) {
        Ok(want) => want,
        Err(e) => panic!(
            "golden file {}: {e}\n(run `{UPDATE}=1 cargo test -p fleetctl` to write it)\n\
             the output was:\n{actual}",
            path.display()
        ),
    };
    if want != actual {
        panic!(
            "output differs from golden file {} (- file, + output):\n{}\
             (if the change is intended: `{UPDATE}=1 cargo test -p fleetctl`, then review \
             `git diff ctl/tests/golden`)",
            path.display(),
            diff(&want, actual)
        );
    }
}

/// A line diff of `want` and `got`: ` ` common, `-` only in `want`, `+` only in `got`; the lines
/// as `{:?}` shows them when the two differ only in blanks or line ends.
fn diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.split_inclusive('\n').collect();
    let b: Vec<&str> = got.split_inclusive('\n').collect();
    // Longest common subsequence of lines, from the end: lcs[i][j] for a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let visible = a.iter().map(|l| l.trim_end()).collect::<Vec<_>>()
        == b.iter().map(|l| l.trim_end()).collect::<Vec<_>>();
    let show = |mark: char, line: &str| {
        if visible {
            format!("{mark} {line:?}\n")
        } else {
            format!("{mark} {}\n", line.trim_end_matches('\n'))
        }
    };
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&show(' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&show('-', a[i]));
            i += 1;
        } else {
            out.push_str(&show('+', b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_what_changed() {
        assert_eq!(diff("a\nb\nc\n", "a\nB\nc\n"), "  a\n- b\n+ B\n  c\n");
        assert_eq!(diff("a\n", "a\nb\n"), "  a\n+ b\n");
        // Differences only in blanks or line ends are shown quoted.
        assert_eq!(diff("a \n", "a\n"), "- \"a \\n\"\n+ \"a\\n\"\n");
        assert_eq!(diff("a\n", "a"), "- \"a\\n\"\n+ \"a\"\n");
    }
}

//! Where manifests come from: a directory or a file on disk ([`dir`]), or
//! a Git remote ([`git`]) whose tips may have to carry a signature
//! ([`verify`]). Each source yields [`SourceFile`]s in a stable order; a
//! file that cannot be read is still yielded, carrying its problem, so
//! that one bad file is reported and never hides the rest.

pub mod dir;
pub mod git;
pub mod git_base;
pub mod git_cache;
pub mod git_ssh;
pub mod git_tree;
pub mod known_hosts;
pub mod verify;

use std::fmt::Write as _;

/// Manifest files larger than this are refused.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user would write it (`jobs.d/team/a.yaml`), made
    /// safe to print by [`display_bytes`]: it is only ever shown, never
    /// opened.
    pub path: String,
    pub content: Result<String, ReadProblem>,
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadProblem {
    TooLarge { bytes: u64 },
    Io(String),
}

/// A file name as nfcron prints it everywhere (diagnostics, plans, state,
/// logs): control characters (newline, ESC, ...), bidirectional overrides
/// and backslashes are escaped (`\n`, `\u{1b}`, `\\`), and bytes that are
/// not UTF-8 are shown as `\xNN`. A name can then neither forge a log line
/// nor repaint a terminal, and two different names never print the same.
///
/// ```
/// use nfcron::source::display_bytes;
/// assert_eq!(display_bytes(b"jobs.d/a.yaml"), "jobs.d/a.yaml");
/// assert_eq!(display_bytes(b"a\nerror: b\x1b[31m.yaml"), "a\\nerror: b\\u{1b}[31m.yaml");
/// assert_eq!(display_bytes(b"caf\xe9"), "caf\\xe9");
/// ```
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        escape_into(&mut out, chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`display_bytes`] of a path.
pub fn display_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    display_bytes(path.as_os_str().as_bytes())
}

/// Text from a manifest (a key in a message, a source line) as printed on a
/// terminal: control characters other than tab, and bidirectional
/// overrides, are escaped like [`display_bytes`] does; backslashes stay.
pub fn display_text(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\t') || is_bidi_control(c);
    if !text.contains(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Characters that reorder the text around them on a terminal.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_what_could_forge_or_repaint_a_line() {
        assert_eq!(display_bytes(b"plain/a.yaml"), "plain/a.yaml");
        assert_eq!(display_bytes("é/😀.yaml".as_bytes()), "é/😀.yaml");
        assert_eq!(display_bytes(b"a\r\tb\x7f"), "a\\r\\tb\\u{7f}");
        assert_eq!(display_bytes("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(display_bytes(b"a\\b"), "a\\\\b");
        assert_eq!(display_bytes(b"\xff\xfe.yaml"), "\\xff\\xfe.yaml");
        // Distinct names stay distinct.
        assert_ne!(display_bytes(b"\\xff"), display_bytes(b"\xff"));
    }

    #[test]
    fn text_keeps_tabs_and_backslashes_and_escapes_controls() {
        assert_eq!(display_text("a\tb\\s"), "a\tb\\s");
        assert_eq!(display_text("k\u{1b}[2J\nx"), "k\\u{1b}[2J\\nx");
    }
}

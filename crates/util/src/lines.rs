//! Reading user text files line by line, safely: each line is capped (a file with no newline,
//! such as `/dev/zero`, is an error naming the line instead of an unbounded allocation), a
//! UTF-8 byte-order mark at the start is skipped, and invalid UTF-8 is an error naming the
//! line and byte. Line numbers are 1-based; a trailing `\r` is removed as
//! [`std::io::BufRead::lines`] does.
//!
//! ```
//! use rlft_util::lines::{LineError, Lines};
//!
//! let text = b"\xEF\xBB\xBF{\"a\": 1}\r\n{\"a\": 2}\n";
//! let lines: Vec<(usize, String)> = Lines::new(&text[..]).collect::<Result<_, _>>()?;
//! assert_eq!(lines, vec![(1, "{\"a\": 1}".to_string()), (2, "{\"a\": 2}".to_string())]);
//!
//! let err = Lines::new(&b"ok\n\xFF\n"[..]).nth(1).unwrap().unwrap_err();
//! assert!(matches!(err, LineError::NotUtf8 { line: 2, byte: 0 }));
//! let long = Lines::with_max(&b"abcdef"[..], 4).next().unwrap().unwrap_err();
//! assert_eq!(long.to_string(), "line 1 is longer than 4 bytes (no newline within the limit)");
//! # Ok::<(), LineError>(())
//! ```

use std::fmt;
use std::io::{self, BufRead, Read};

/// The default cap on one line: 64 MiB.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Why a line could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum LineError {
    /// The line has more than `max` bytes before its newline (or the file ends without one).
    TooLong {
        /// 1-based line number.
        line: usize,
        /// The cap, in bytes.
        max: usize,
    },
    /// The line is not valid UTF-8.
    NotUtf8 {
        /// 1-based line number.
        line: usize,
        /// Byte offset in the line of the first invalid byte.
        byte: usize,
    },
    /// Reading failed.
    Io {
        /// 1-based line number being read.
        line: usize,
        /// The error.
        source: io::Error,
    },
}

impl LineError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            Self::TooLong { line, .. } | Self::NotUtf8 { line, .. } | Self::Io { line, .. } => {
                *line
            }
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { line, max } => write!(
                f,
                "line {line} is longer than {max} bytes (no newline within the limit)"
            ),
            Self::NotUtf8 { line, byte } => {
                write!(
                    f,
                    "line {line} is not valid UTF-8 (byte {byte} of the line)"
                )
            }
            Self::Io { line, source } => write!(f, "reading line {line}: {source}"),
        }
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<LineError> for io::Error {
    /// An [`io::ErrorKind::InvalidData`] error (or the read error's own kind) whose message
    /// names the line; the [`LineError`] is its inner error.
    fn from(e: LineError) -> Self {
        let kind = match &e {
            LineError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// An iterator over the lines of a reader, as `(line number, line)`, with the checks of the
/// [module docs](self).
#[derive(Debug)]
pub struct Lines<R> {
    reader: R,
    max: usize,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `reader`, each capped at [`MAX_LINE_BYTES`].
    pub fn new(reader: R) -> Self {
        Self::with_max(reader, MAX_LINE_BYTES)
    }

    /// Lines of `reader`, each capped at `max` bytes (newline excluded).
    pub fn with_max(reader: R, max: usize) -> Self {
        Self {
            reader,
            max,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn read_line(&mut self) -> Result<Option<String>, LineError> {
        self.buf.clear();
        let line = self.line;
        let limit = (self.max as u64).saturating_add(2);
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| LineError::Io { line, source })?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        if self.buf.len() > self.max {
            return Err(LineError::TooLong {
                line,
                max: self.max,
            });
        }
        let mut bytes = &self.buf[..];
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(e) => Err(LineError::NotUtf8 {
                line,
                byte: e.valid_up_to(),
            }),
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<(usize, String), LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.line += 1;
        match self.read_line() {
            Ok(Some(s)) => Some(Ok((self.line, s))),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // A line that cannot be read ends the iteration: where the next one starts is
                // unknown after an over-long line.
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole text file of at most `max` bytes (a config), skipping a UTF-8 byte-order
/// mark; invalid UTF-8 is an error naming the line and byte.
///
/// # Errors
/// [`io::Error`]s: the file's own, [`io::ErrorKind::FileTooLarge`] past `max`, or
/// [`io::ErrorKind::InvalidData`] wrapping a [`LineError::NotUtf8`].
pub fn read_text(path: impl AsRef<std::path::Path>, max: usize) -> io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take((max as u64).saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {max} bytes"),
        ));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let line = 1 + body[..at].iter().filter(|&&b| b == b'\n').count();
            let start = body[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            Err(LineError::NotUtf8 {
                line,
                byte: at - start,
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8], max: usize) -> Vec<Result<(usize, String), String>> {
        Lines::with_max(bytes, max)
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn lines_bom_crlf_and_a_last_line_without_newline() {
        assert_eq!(
            all(b"\xEF\xBB\xBFa\r\n\nb", 10),
            vec![
                Ok((1, "a".into())),
                Ok((2, String::new())),
                Ok((3, "b".into()))
            ]
        );
        // A BOM later in the file is content, not skipped.
        assert_eq!(
            all(b"a\n\xEF\xBB\xBFb\n", 10)[1],
            Ok((2, "\u{feff}b".into()))
        );
    }

    #[test]
    fn the_cap_is_exact_and_names_the_line() {
        assert_eq!(all(b"abcd\n", 4), vec![Ok((1, "abcd".into()))]);
        assert_eq!(all(b"abcd\r\n", 4), vec![Ok((1, "abcd".into()))]);
        assert_eq!(
            all(b"ok\nabcde\nnext\n", 4),
            vec![
                Ok((1, "ok".into())),
                Err("line 2 is longer than 4 bytes (no newline within the limit)".into())
            ]
        );
        // An endless line (like /dev/zero) reads at most the cap.
        let endless = std::io::repeat(0).take(u64::MAX);
        let mut it = Lines::with_max(std::io::BufReader::new(endless), 1 << 16);
        assert!(matches!(
            it.next(),
            Some(Err(LineError::TooLong { line: 1, .. }))
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn invalid_utf8_names_line_and_byte() {
        assert_eq!(
            all(b"a\nb\nxy\xC3(\n", 10)[2],
            Err("line 3 is not valid UTF-8 (byte 2 of the line)".into())
        );
    }

    #[test]
    fn read_text_caps_skips_the_bom_and_names_bad_bytes() {
        let dir = std::env::temp_dir().join(format!("rlft-util-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        std::fs::write(&p, b"\xEF\xBB\xBFa = 1\n").unwrap();
        assert_eq!(read_text(&p, 100).unwrap(), "a = 1\n");
        assert_eq!(
            read_text(&p, 4).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        std::fs::write(&p, b"a = 1\nb = \"\xFF\"\n").unwrap();
        assert_eq!(
            read_text(&p, 100).unwrap_err().to_string(),
            "line 2 is not valid UTF-8 (byte 5 of the line)"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

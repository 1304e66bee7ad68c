//! A direct reader for the JSON envelope exactly as [`JsonCodec`](super::JsonCodec) writes it.
//!
//! `{"created":N,"updated":N[,"max_age":N],"session":{"name":VALUE,...}}`, with no whitespace,
//! the keys in this order, decimal numbers without a sign or leading zero, and names without
//! escapes. Every value is checked to be one complete JSON value (strict RFC 8259 grammar, UTF-8
//! strings, nesting up to 128 levels), as `serde_json`'s `RawValue` checks it. Anything else,
//! valid or not, returns `None` and `serde_json` decides: for every input this reader accepts,
//! `serde_json` gives the same record (a unit test and a property test compare the two). The
//! serde path costs about 5,500 instructions for the example's four fields, this one a fraction.

/// An envelope read directly: the metadata and the `(name, raw value)` pairs in order.
pub(super) struct Envelope<'a> {
    pub(super) created: u64,
    pub(super) updated: u64,
    pub(super) max_age: Option<u64>,
    pub(super) fields: Vec<(&'a str, &'a [u8])>,
}

/// Reads an envelope, or returns `None` for serde to decide.
pub(super) fn read(bytes: &[u8]) -> Option<Envelope<'_>> {
    let mut r = Reader { bytes, at: 0 };
    r.tag(b"{\"created\":")?;
    let created = r.number()?;
    r.tag(b",\"updated\":")?;
    let updated = r.number()?;
    let max_age = if r.tag(b",\"max_age\":").is_some() {
        Some(r.number()?)
    } else {
        None
    };
    r.tag(b",\"session\":{")?;
    let mut fields = Vec::with_capacity(8);
    if r.tag(b"}").is_none() {
        loop {
            let name = r.name()?;
            r.tag(b":")?;
            let start = r.at;
            r.value(0)?;
            fields.push((name, &bytes[start..r.at]));
            match r.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    r.tag(b"}")?;
    (r.at == bytes.len()).then_some(Envelope {
        created,
        updated,
        max_age,
        fields,
    })
}

/// Nesting deeper than this is left to `serde_json` (whose own limit is 128).
const MAX_DEPTH: usize = 128;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn tag(&mut self, tag: &[u8]) -> Option<()> {
        self.bytes[self.at..].starts_with(tag).then(|| {
            self.at += tag.len();
        })
    }

    /// A `u64` in plain decimal: `0` or a non-zero digit first.
    fn number(&mut self) -> Option<u64> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        digits.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }

    /// A field name: a string without escapes or control characters, in UTF-8.
    fn name(&mut self) -> Option<&'a str> {
        self.tag(b"\"")?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                _ => {}
            }
        }
        std::str::from_utf8(&self.bytes[start..self.at - 1]).ok()
    }

    /// One complete JSON value.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string(),
            b'{' => {
                self.at += 1;
                if self.tag(b"}").is_some() {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.tag(b":")?;
                    self.value(depth + 1)?;
                    match self.next()? {
                        b',' => {}
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                if self.tag(b"]").is_some() {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    match self.next()? {
                        b',' => {}
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.tag(b"true"),
            b'f' => self.tag(b"false"),
            b'n' => self.tag(b"null"),
            b'-' | b'0'..=b'9' => self.json_number(),
            _ => None,
        }
    }

    /// A string: escapes checked, no control characters, UTF-8.
    fn string(&mut self) -> Option<()> {
        self.tag(b"\"")?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            if !self.next()?.is_ascii_hexdigit() {
                                return None;
                            }
                        }
                    }
                    _ => return None,
                },
                0..0x20 => return None,
                _ => {}
            }
        }
        std::str::from_utf8(&self.bytes[start..self.at - 1])
            .is_ok()
            .then_some(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn json_number(&mut self) -> Option<()> {
        let digits = |r: &mut Self| {
            let start = r.at;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.at += 1;
            }
            (r.at > start).then_some(())
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        if self.peek() == Some(b'0') {
            self.at += 1;
        } else {
            digits(self)?;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            digits(self)?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(())
    }
}

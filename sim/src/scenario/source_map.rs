//! Where each field of a scenario file is: a small, forgiving scanner over the RON source
//! that records, for every value, its path (`faults[2].fault.0.group`), the span of its key
//! (for named fields) and the span of the value itself.
//!
//! Paths: a named field is `.name` (no dot at the root), a list item `[i]`, a positional
//! argument `.i` (`Crash(Leader(group: 0))` → `fault.0.group`), a map entry `[i]`.
//!
//! The scanner never fails: on text it cannot read it stops, keeping what it has (values it
//! was inside end where it stopped). serde decides what is valid; this only says where.

use super::error::Location;

/// Nesting deeper than this stops the scan (ron's own recursion limit is 128).
const NESTING_DEPTH_MAX: u32 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// Byte offsets into the source: `start..end`.
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// `offset` inside, counting the end (ron reports errors just after the token).
    fn holds(&self, offset: usize) -> bool {
        self.start <= offset && offset <= self.end
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: String,
    pub key: Option<Span>,
    pub value: Span,
}

impl Entry {
    fn whole(&self) -> Span {
        Span {
            start: self.key.map_or(self.value.start, |key| key.start),
            end: self.value.end,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SourceMap<'a> {
    source: &'a str,
    entries: Vec<Entry>,
}

impl<'a> SourceMap<'a> {
    pub fn scan(source: &'a str) -> SourceMap<'a> {
        let mut scanner = Scanner {
            bytes: source.as_bytes(),
            position: 0,
            depth: 0,
            entries: Vec::new(),
        };
        let _complete = scanner.document();
        SourceMap {
            source,
            entries: scanner.entries,
        }
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for exactly this path.
    pub fn find(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.path == path)
    }

    /// The entry for `path`, or for its nearest ancestor present in the file (a field left
    /// to its default has no position of its own).
    pub fn find_or_ancestor(&self, path: &str) -> Option<&Entry> {
        let mut path = path;
        loop {
            if let Some(entry) = self.find(path) {
                return Some(entry);
            }
            if path.is_empty() {
                return None;
            }
            path = parent_path(path);
        }
    }

    /// The innermost entry whose key-and-value span holds `offset`.
    pub fn innermost_at(&self, offset: usize) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|entry| entry.whole().holds(offset))
            .min_by_key(|entry| {
                let whole = entry.whole();
                (whole.end - whole.start, std::cmp::Reverse(entry.path.len()))
            })
    }

    /// Byte offset of ron's (line, column-in-bytes) position, clamped to the source.
    pub fn offset_of_ron_position(&self, line: usize, column: usize) -> usize {
        let mut line_start = 0;
        for _ in 1..line.max(1) {
            match self.source[line_start..].find('\n') {
                Some(newline) => line_start += newline + 1,
                None => return self.source.len(),
            }
        }
        line_start
            .saturating_add(column.saturating_sub(1))
            .min(self.source.len())
    }

    /// 1-based line and character column of a byte offset.
    pub fn location(&self, file: &str, offset: usize) -> Location {
        location_in(self.source, file, offset)
    }
}

/// 1-based line and character column of a byte offset into `source`.
pub(crate) fn location_in(source: &str, file: &str, offset: usize) -> Location {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    Location {
        file: file.to_string(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

/// `faults[2].fault.0` → `faults[2].fault`; `faults[2]` → `faults`; `name` → ``.
pub(crate) fn parent_path(path: &str) -> &str {
    if let Some(stripped) = path.strip_suffix(']') {
        if let Some(open) = stripped.rfind('[') {
            return &path[..open];
        }
    }
    match path.rfind('.') {
        Some(dot) => &path[..dot],
        None => "",
    }
}

/// `parent` + `.field`, without a leading dot at the root.
pub(crate) fn child_path(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    position: usize,
    depth: u32,
    entries: Vec<Entry>,
}

/// `None`: the scanner cannot go on (malformed or too deep); what it has is kept.
type Scan = Option<()>;

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.position + ahead).copied()
    }

    fn expect(&mut self, byte: u8) -> Scan {
        if self.peek() == Some(byte) {
            self.position += 1;
            Some(())
        } else {
            None
        }
    }

    fn document(&mut self) -> Scan {
        self.trivia()?;
        // Extension attributes: `#![enable(implicit_some)]`.
        while self.peek() == Some(b'#') {
            self.position += 1;
            self.expect(b'!')?;
            self.trivia()?;
            self.balanced(b'[', b']')?;
            self.trivia()?;
        }
        self.value(String::new(), None)
    }

    /// Whitespace and comments (`//` to the end of the line, `/* */` nested).
    fn trivia(&mut self) -> Scan {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(byte), _) if byte.is_ascii_whitespace() => self.position += 1,
                (Some(b'/'), Some(b'/')) => {
                    while self.peek().is_some_and(|byte| byte != b'\n') {
                        self.position += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => self.block_comment()?,
                _ => return Some(()),
            }
        }
    }

    fn block_comment(&mut self) -> Scan {
        let mut open_comments = 0_u32;
        loop {
            match (self.peek()?, self.peek_at(1)) {
                (b'/', Some(b'*')) => {
                    open_comments += 1;
                    self.position += 2;
                }
                (b'*', Some(b'/')) => {
                    open_comments -= 1;
                    self.position += 2;
                    if open_comments == 0 {
                        return Some(());
                    }
                }
                _ => self.position += 1,
            }
        }
    }

    /// Skips `open ... close` with nesting, ignoring what is inside (attributes only).
    fn balanced(&mut self, open: u8, close: u8) -> Scan {
        self.expect(open)?;
        let mut depth = 1_u32;
        while depth > 0 {
            let byte = self.peek()?;
            self.position += 1;
            if byte == open {
                depth += 1;
            } else if byte == close {
                depth -= 1;
            }
        }
        Some(())
    }

    /// One value at `path`. Records an entry even when the value is cut short.
    fn value(&mut self, path: String, key: Option<Span>) -> Scan {
        self.trivia()?;
        if self.depth >= NESTING_DEPTH_MAX {
            return None;
        }
        self.depth += 1;
        let start = self.position;
        let index = self.entries.len();
        self.entries.push(Entry {
            path: path.clone(),
            key,
            value: Span { start, end: start },
        });
        let result = self.value_body(&path);
        self.depth -= 1;
        self.entries[index].value.end = self.position.min(self.bytes.len());
        result
    }

    fn value_body(&mut self, path: &str) -> Scan {
        match self.peek()? {
            b'(' => self.parenthesised(path),
            b'[' => self.list(path),
            b'{' => self.map(path),
            b'"' => self.string(),
            b'\'' => self.char_literal(),
            b'r' if matches!(self.peek_at(1), Some(b'"' | b'#')) && !self.is_raw_ident() => {
                self.raw_string()
            }
            byte if is_ident_start(byte) => {
                self.identifier()?;
                // A struct or variant name may be followed by its arguments.
                let name_end = self.position;
                self.trivia()?;
                if self.peek() == Some(b'(') {
                    self.parenthesised(path)
                } else {
                    self.position = name_end;
                    Some(())
                }
            }
            byte if byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.') => {
                self.number();
                Some(())
            }
            _ => None,
        }
    }

    /// `( ... )`: named fields if it opens with `ident:`, positional arguments otherwise.
    fn parenthesised(&mut self, path: &str) -> Scan {
        self.expect(b'(')?;
        self.trivia()?;
        if self.opens_named_field() {
            self.named_fields(path)
        } else {
            self.items(path, b')', |path, index| format!("{path}.{index}"))
        }
    }

    fn opens_named_field(&mut self) -> bool {
        let saved = self.position;
        let named = self.identifier().is_some()
            && self.trivia().is_some()
            && self.peek() == Some(b':')
            && self.peek_at(1) != Some(b':');
        self.position = saved;
        named
    }

    fn named_fields(&mut self, path: &str) -> Scan {
        loop {
            self.trivia()?;
            if self.peek()? == b')' {
                self.position += 1;
                return Some(());
            }
            let key_start = self.position;
            let name = self.identifier()?;
            let key = Span {
                start: key_start,
                end: self.position,
            };
            self.trivia()?;
            self.expect(b':')?;
            self.value(child_path(path, &name), Some(key))?;
            if !self.separator(b')')? {
                return Some(());
            }
        }
    }

    /// After an item: `true` if a comma was read (more may follow), `false` if the closing
    /// byte was read.
    fn separator(&mut self, close: u8) -> Option<bool> {
        self.trivia()?;
        match self.peek()? {
            b',' => {
                self.position += 1;
                Some(true)
            }
            byte if byte == close => {
                self.position += 1;
                Some(false)
            }
            _ => None,
        }
    }

    fn items(&mut self, path: &str, close: u8, item_path: fn(&str, usize) -> String) -> Scan {
        let mut index = 0;
        loop {
            self.trivia()?;
            if self.peek()? == close {
                self.position += 1;
                return Some(());
            }
            self.value(item_path(path, index), None)?;
            index += 1;
            if !self.separator(close)? {
                return Some(());
            }
        }
    }

    fn list(&mut self, path: &str) -> Scan {
        self.expect(b'[')?;
        self.items(path, b']', |path, index| format!("{path}[{index}]"))
    }

    fn map(&mut self, path: &str) -> Scan {
        self.expect(b'{')?;
        let mut index = 0;
        loop {
            self.trivia()?;
            if self.peek()? == b'}' {
                self.position += 1;
                return Some(());
            }
            let item_path = format!("{path}[{index}]");
            let key_start = self.position;
            self.value(format!("{item_path}.key"), None)?;
            let key = Span {
                start: key_start,
                end: self.position,
            };
            self.trivia()?;
            self.expect(b':')?;
            self.value(item_path, Some(key))?;
            index += 1;
            if !self.separator(b'}')? {
                return Some(());
            }
        }
    }

    fn is_raw_ident(&self) -> bool {
        self.peek_at(1) == Some(b'#') && self.peek_at(2).is_some_and(is_ident_start)
    }

    /// An identifier, `r#raw` ones included; returns it without the `r#`.
    fn identifier(&mut self) -> Option<String> {
        let raw = self.peek() == Some(b'r') && self.is_raw_ident();
        if raw {
            self.position += 2;
        }
        let start = self.position;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while self.peek().is_some_and(|byte| {
            is_ident_continue(byte) || (raw && matches!(byte, b'.' | b'+' | b'-'))
        }) {
            self.position += 1;
        }
        Some(String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned())
    }

    fn number(&mut self) {
        while self.peek().is_some_and(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'+' | b'-')
        }) {
            self.position += 1;
        }
    }

    fn string(&mut self) -> Scan {
        self.quoted(b'"')
    }

    fn char_literal(&mut self) -> Scan {
        self.quoted(b'\'')
    }

    fn quoted(&mut self, quote: u8) -> Scan {
        self.expect(quote)?;
        loop {
            match self.peek()? {
                b'\\' => self.position += 2,
                byte if byte == quote => {
                    self.position += 1;
                    return Some(());
                }
                _ => self.position += 1,
            }
        }
    }

    /// `r"..."`, `r#"..."#`, `r##"..."##`.
    fn raw_string(&mut self) -> Scan {
        self.expect(b'r')?;
        let mut hashes = 0_usize;
        while self.peek() == Some(b'#') {
            hashes += 1;
            self.position += 1;
        }
        self.expect(b'"')?;
        loop {
            if self.peek()? == b'"' && (1..=hashes).all(|ahead| self.peek_at(ahead) == Some(b'#')) {
                self.position += 1 + hashes;
                return Some(());
            }
            self.position += 1;
        }
    }
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(source: &str) -> Vec<(String, String)> {
        let map = SourceMap::scan(source);
        map.entries()
            .iter()
            .map(|entry| {
                let text = &source[entry.value.start..entry.value.end];
                (entry.path.clone(), text.to_string())
            })
            .collect()
    }

    // The scanner's paths must be exactly the ones validation names, for nested structs,
    // list items and positional arguments alike.
    #[test]
    fn paths_of_nested_values() {
        let source = r#"Scenario(name: "x", // comment, with (parens)
            faults: [
                (at: "1s", fault: Crash(Leader(group: 0))),
                (at: "2s", fault: Partition([[0, 1], [2]])),
                /* block /* nested */ ) */ (at: "3s", fault: Heal),
            ],
            cluster: (raft: (vote_interval: ("300ms", "1s"))),
            expect: (),
        )"#;
        let found = paths(source);
        let get = |path: &str| {
            found
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, text)| text.as_str())
                .unwrap_or_else(|| panic!("no path {path} in {found:?}"))
        };
        assert_eq!(get("name"), "\"x\"");
        assert_eq!(get("faults[0].at"), "\"1s\"");
        assert_eq!(get("faults[0].fault"), "Crash(Leader(group: 0))");
        assert_eq!(get("faults[0].fault.0"), "Leader(group: 0)");
        assert_eq!(get("faults[0].fault.0.group"), "0");
        assert_eq!(get("faults[1].fault.0[0][1]"), "1");
        assert_eq!(get("faults[1].fault.0[1]"), "[2]");
        assert_eq!(get("faults[2].fault"), "Heal");
        assert_eq!(get("cluster.raft.vote_interval.1"), "\"1s\"");
        assert_eq!(get("expect"), "()");
        assert!(get("").starts_with("Scenario("));
    }

    #[test]
    fn strings_hide_delimiters() {
        let found = paths(r##"(a: "x\")],(", b: r#"")"#, c: 'x', d: -1.5e3, r#for: 2)"##);
        let texts: Vec<&str> = found.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(
            texts[1..],
            ["\"x\\\")],(\"", "r#\"\")\"#", "'x'", "-1.5e3", "2"]
        );
        assert_eq!(found[5].0, "for");
    }

    #[test]
    fn locations_count_characters() {
        let source = "(a: \"é\",\n  b: 1)";
        let map = SourceMap::scan(source);
        let b = map.find("b").expect("b is in the source");
        let location = map.location("f.ron", b.value.start);
        assert_eq!((location.line, location.column), (2, 6));
        let key = map.location("f.ron", b.key.expect("named").start);
        assert_eq!((key.line, key.column), (2, 3));
    }

    #[test]
    fn cut_short_values_are_kept() {
        let map = SourceMap::scan("(a: [1, 2, (b: ");
        assert!(map.find("a[2]").is_some());
        assert_eq!(
            map.innermost_at(14).map(|entry| entry.path.as_str()),
            Some("a[2].b")
        );
        assert_eq!(
            map.innermost_at(11).map(|entry| entry.path.as_str()),
            Some("a[2]")
        );
    }

    #[test]
    fn deep_nesting_stops() {
        let source = "[".repeat(10_000);
        let map = SourceMap::scan(&source);
        assert_eq!(map.entries().len(), NESTING_DEPTH_MAX as usize);
    }

    #[test]
    fn parents() {
        assert_eq!(parent_path("faults[2].fault.0"), "faults[2].fault");
        assert_eq!(parent_path("faults[2]"), "faults");
        assert_eq!(parent_path("name"), "");
        assert_eq!(parent_path("a.b[0][1]"), "a.b[0]");
    }
}

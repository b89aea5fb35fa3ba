//! Wildcard patterns (`*`, `?`), policy variables (`${aws:username}`, `${key, 'default'}`,
//! `${*}`, `${?}`, `${$}`) and ARN matching segment by segment.

use crate::Context;

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
    /// `${key}` or `${key, 'default'}`; `key` is lower-case, `name` as written.
    Variable {
        key: String,
        name: String,
        default: Option<String>,
    },
}

/// A compiled pattern: a policy's `Action`, `Resource` or condition value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pieces: Vec<Piece>,
    has_variables: bool,
    /// The pattern is exactly `*`.
    any: bool,
}

/// A unit of a pattern after variables are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Byte(u8),
    Star,
    One,
}

impl Pattern {
    /// Compiles `text`. With `variables` (policy version 2012-10-17), `${…}` is a variable;
    /// otherwise it is literal text. With `lower`, literals are lower-cased (for actions).
    pub(crate) fn compile(text: &str, variables: bool, lower: bool) -> Result<Pattern, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let flush = |literal: &mut String, pieces: &mut Vec<Piece>| {
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(literal)));
            }
        };
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unterminated policy variable in '{text}'"))?;
                let inner = rest.get(2..end).unwrap_or("").trim();
                rest = rest.get(end + 1..).unwrap_or("");
                match inner {
                    "*" => literal.push('*'),
                    "?" => literal.push('?'),
                    "$" => literal.push('$'),
                    _ => {
                        let (key, default) = match inner.split_once(',') {
                            Some((key, default)) => {
                                let default = default.trim();
                                let default = default
                                    .strip_prefix('\'')
                                    .and_then(|d| d.strip_suffix('\''))
                                    .ok_or_else(|| {
                                        format!(
                                            "policy variable default must be quoted in '{text}'"
                                        )
                                    })?;
                                (key.trim(), Some(default.to_owned()))
                            }
                            None => (inner, None),
                        };
                        if key.is_empty() {
                            return Err(format!("empty policy variable in '{text}'"));
                        }
                        flush(&mut literal, &mut pieces);
                        pieces.push(Piece::Variable {
                            key: key.to_ascii_lowercase(),
                            name: key.to_owned(),
                            default,
                        });
                    }
                }
                continue;
            }
            rest = rest.get(c.len_utf8()..).unwrap_or("");
            match c {
                '*' => {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Star);
                }
                '?' => {
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::One);
                }
                c if lower => literal.extend(c.to_lowercase()),
                c => literal.push(c),
            }
        }
        flush(&mut literal, &mut pieces);
        let has_variables = pieces.iter().any(|p| matches!(p, Piece::Variable { .. }));
        let any = pieces == [Piece::Star];
        Ok(Pattern {
            pieces,
            has_variables,
            any,
        })
    }

    /// The context keys this pattern needs a value for (variables without a default).
    pub(crate) fn required_keys(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Variable {
                name,
                default: None,
                ..
            } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Resolves variables against the context into units. `None` when a variable has no value
    /// and no default: the element then matches nothing, as in IAM.
    fn units(&self, context: &Context) -> Option<Vec<Unit>> {
        let mut units = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => units.extend(s.bytes().map(Unit::Byte)),
                Piece::Star => units.push(Unit::Star),
                Piece::One => units.push(Unit::One),
                Piece::Variable { key, default, .. } => {
                    let value = context
                        .get_lower(key)
                        .and_then(|v| v.first())
                        .map(String::as_str)
                        .or(default.as_deref())?;
                    units.extend(value.bytes().map(Unit::Byte));
                }
            }
        }
        Some(units)
    }

    /// The pattern as literal text after resolving variables (for `StringEquals` and
    /// friends, where `*` is not a wildcard). `None` if a variable has no value.
    pub(crate) fn resolve(&self, context: &Context) -> Option<std::borrow::Cow<'_, str>> {
        if !self.has_variables {
            let mut s = String::new();
            for piece in &self.pieces {
                match piece {
                    Piece::Literal(l) if self.pieces.len() == 1 => {
                        return Some(std::borrow::Cow::Borrowed(l));
                    }
                    Piece::Literal(l) => s.push_str(l),
                    Piece::Star => s.push('*'),
                    Piece::One => s.push('?'),
                    Piece::Variable { .. } => {}
                }
            }
            return Some(std::borrow::Cow::Owned(s));
        }
        let units = self.units(context)?;
        let bytes: Vec<u8> = units
            .iter()
            .map(|u| match u {
                Unit::Byte(b) => *b,
                Unit::Star => b'*',
                Unit::One => b'?',
            })
            .collect();
        Some(std::borrow::Cow::Owned(
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    /// Wildcard match of the whole `text`. With `fold_case`, `text` is compared lower-cased
    /// (the pattern was compiled lower-case).
    pub(crate) fn matches(&self, text: &str, context: &Context, fold_case: bool) -> bool {
        if self.any {
            return true;
        }
        if !self.has_variables {
            return match_pieces(&self.pieces, text.as_bytes(), fold_case);
        }
        match self.units(context) {
            Some(units) => glob(&units, text.as_bytes(), fold_case),
            None => false,
        }
    }

    /// ARN match: the first five `:`-separated segments match one by one (a wildcard never
    /// spans a `:` there); the rest is the resource part, where `*` spans anything.
    pub(crate) fn matches_arn(&self, arn: &str, context: &Context) -> bool {
        if self.any {
            return true;
        }
        let units = if self.has_variables {
            match self.units(context) {
                Some(u) => u,
                None => return false,
            }
        } else {
            flatten(&self.pieces)
        };
        match_arn_units(&units, arn.as_bytes())
    }
}

fn flatten(pieces: &[Piece]) -> Vec<Unit> {
    let mut units = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Literal(s) => units.extend(s.bytes().map(Unit::Byte)),
            Piece::Star => units.push(Unit::Star),
            Piece::One => units.push(Unit::One),
            Piece::Variable { .. } => {}
        }
    }
    units
}

fn match_arn_units(pattern: &[Unit], arn: &[u8]) -> bool {
    let pat_parts: Vec<&[Unit]> = pattern.splitn(6, |u| *u == Unit::Byte(b':')).collect();
    let arn_parts: Vec<&[u8]> = arn.splitn(6, |b| *b == b':').collect();
    if pat_parts.len() == 6 {
        return arn_parts.len() == 6
            && pat_parts
                .iter()
                .zip(&arn_parts)
                .all(|(p, a)| glob(p, a, false));
    }
    // A pattern with fewer segments ("arn:aws:s3:*"): its last segment matches the rest.
    let Some((last, leading)) = pat_parts.split_last() else {
        return false;
    };
    if arn_parts.len() < pat_parts.len() {
        return false;
    }
    let leading_ok = leading
        .iter()
        .zip(&arn_parts)
        .all(|(p, a)| glob(p, a, false));
    let consumed: usize = arn_parts
        .iter()
        .take(leading.len())
        .map(|a| a.len() + 1)
        .sum();
    leading_ok && glob(last, arn.get(consumed..).unwrap_or(&[]), false)
}

/// Glob over literal pieces without resolving anything (the allocation-free path).
fn match_pieces(pieces: &[Piece], text: &[u8], fold_case: bool) -> bool {
    // Iterate pattern positions as (piece index, byte offset inside a literal).
    #[derive(Clone, Copy)]
    struct Pos {
        piece: usize,
        offset: usize,
    }
    let unit_at = |p: Pos| -> Option<Unit> {
        match pieces.get(p.piece)? {
            Piece::Literal(s) => s.as_bytes().get(p.offset).map(|b| Unit::Byte(*b)),
            Piece::Star => Some(Unit::Star),
            Piece::One => Some(Unit::One),
            Piece::Variable { .. } => None,
        }
    };
    let advance = |p: Pos| -> Pos {
        match pieces.get(p.piece) {
            Some(Piece::Literal(s)) if p.offset + 1 < s.len() => Pos {
                piece: p.piece,
                offset: p.offset + 1,
            },
            _ => Pos {
                piece: p.piece + 1,
                offset: 0,
            },
        }
    };
    let mut p = Pos {
        piece: 0,
        offset: 0,
    };
    let mut t = 0usize;
    let mut star: Option<(Pos, usize)> = None;
    loop {
        match unit_at(p) {
            Some(Unit::Star) => {
                p = advance(p);
                star = Some((p, t));
                continue;
            }
            Some(unit) if t < text.len() => {
                if let Some(len) = step(unit, text, t, fold_case) {
                    p = advance(p);
                    t += len;
                    continue;
                }
            }
            None if t == text.len() => return true,
            _ => {}
        }
        match star {
            Some((sp, st)) if st < text.len() => {
                let next = st + char_len(text, st);
                star = Some((sp, next));
                p = sp;
                t = next;
            }
            _ => return false,
        }
    }
}

/// Glob over resolved units.
fn glob(pattern: &[Unit], text: &[u8], fold_case: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        match pattern.get(p) {
            Some(Unit::Star) => {
                p += 1;
                star = Some((p, t));
                continue;
            }
            Some(unit) if t < text.len() => {
                if let Some(len) = step(*unit, text, t, fold_case) {
                    p += 1;
                    t += len;
                    continue;
                }
            }
            None if t == text.len() => return true,
            _ => {}
        }
        match star {
            Some((sp, st)) if st < text.len() => {
                let next = st + char_len(text, st);
                star = Some((sp, next));
                p = sp;
                t = next;
            }
            _ => return false,
        }
    }
}

/// Matches one non-star unit at `text[t..]`, returning how many bytes it consumed.
fn step(unit: Unit, text: &[u8], t: usize, fold_case: bool) -> Option<usize> {
    let c = *text.get(t)?;
    match unit {
        Unit::One => Some(char_len(text, t)),
        Unit::Byte(b) => {
            let c = if fold_case { c.to_ascii_lowercase() } else { c };
            (b == c).then_some(1)
        }
        Unit::Star => None,
    }
}

/// Length in bytes of the UTF-8 character starting at `text[t]`.
fn char_len(text: &[u8], t: usize) -> usize {
    match text.get(t) {
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(b) if *b >= 0xC0 => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.set(k, *v);
        }
        c
    }

    #[test]
    fn wildcards() {
        let c = Context::new();
        let p = Pattern::compile("s3:get*", false, true).unwrap();
        assert!(p.matches("s3:GetObject", &c, true));
        assert!(!p.matches("s3:PutObject", &c, true));
        let p = Pattern::compile("iam:?etUser", false, true).unwrap();
        assert!(p.matches("iam:GetUser", &c, true));
        assert!(!p.matches("iam:GGetUser", &c, true));
        let p = Pattern::compile("a*b*c", false, false).unwrap();
        assert!(p.matches("abc", &c, false));
        assert!(p.matches("aXXbYYc", &c, false));
        assert!(!p.matches("aXXbYY", &c, false));
        let p = Pattern::compile("?", false, false).unwrap();
        assert!(p.matches("é", &c, false));
    }

    #[test]
    fn variables_resolve_with_defaults_and_escapes() {
        let p = Pattern::compile("arn:aws:s3:::bucket/${aws:username}/*", true, false).unwrap();
        assert!(p.matches_arn(
            "arn:aws:s3:::bucket/alice/x/y",
            &ctx(&[("aws:username", "alice")])
        ));
        assert!(!p.matches_arn(
            "arn:aws:s3:::bucket/bob/x",
            &ctx(&[("aws:username", "alice")])
        ));
        assert!(
            !p.matches_arn("arn:aws:s3:::bucket/alice/x", &Context::new()),
            "missing variable matches nothing"
        );
        let p = Pattern::compile("home/${aws:username, 'guest'}", true, false).unwrap();
        assert!(p.matches("home/guest", &Context::new(), false));
        let p = Pattern::compile("a${*}b${?}${$}", true, false).unwrap();
        assert_eq!(p.resolve(&Context::new()).unwrap(), "a*b?$");
        // Literal: version 2008-10-17 has no variables.
        let p = Pattern::compile("${aws:username}", false, false).unwrap();
        assert!(p.matches("${aws:username}", &ctx(&[("aws:username", "alice")]), false));
    }

    #[test]
    fn arn_segments_do_not_share_wildcards() {
        let c = Context::new();
        let p = Pattern::compile("arn:aws:iam::*:user/*", false, false).unwrap();
        assert!(p.matches_arn("arn:aws:iam::111122223333:user/alice", &c));
        assert!(!p.matches_arn("arn:aws:iam::111122223333:role/alice", &c));
        let p = Pattern::compile("arn:aws:s3:::bucket/*", false, false).unwrap();
        assert!(p.matches_arn("arn:aws:s3:::bucket/a:b/c", &c));
        assert!(!p.matches_arn("arn:aws:s3:::bucket", &c));
        let p = Pattern::compile("arn:aws:s3:*", false, false).unwrap();
        assert!(p.matches_arn("arn:aws:s3:::bucket/k", &c));
        let p = Pattern::compile("arn:*:s3:::b", false, false).unwrap();
        assert!(p.matches_arn("arn:aws:s3:::b", &c));
        assert!(!p.matches_arn("arn:aws:x:s3:::b", &c));
    }
}

//! Reply templates: `{name}` and `{name|fallback}` placeholders.
//!
//! Invariant: a variable without a value is never rendered blank. It falls back to its
//! fallback if it has one; otherwise the placeholder stays visible in the text and the
//! variable is listed in [`Rendered::missing`] for the agent to fill. Pure.

/// A parsed template. Held for every phrase of every shop, so it is compact: one buffer
/// with the literal text, names and fallbacks, and the parts as ranges into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    buf: Box<str>,
    parts: Box<[Part]>,
}

/// A byte range of [`Template::buf`].
type Span = (u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Text(Span),
    Var { name: Span, fallback: Option<Span> },
}

/// Why a template does not parse; `at` is the character offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template error at character {at}: {message}")]
pub struct TemplateError {
    pub at: usize,
    pub message: String,
}

/// A rendered reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Variables that had no value and no fallback, in order of first appearance.
    pub missing: Vec<String>,
}

impl Template {
    /// Parses `{name}` / `{name|fallback}`; `{{` and `}}` are literal braces. Names are
    /// `[a-z0-9_]+`.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        let mut buf = String::with_capacity(src.len());
        let mut parts = Vec::new();
        // Start of the literal text not yet closed into a part.
        let mut text_start = 0usize;
        let span = |a: usize, b: usize| (a as u32, b as u32);
        let mut chars = src.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    buf.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    buf.push('}');
                }
                '}' => {
                    return Err(TemplateError {
                        at: i,
                        message: "`}` without `{` (write `}}` for a literal brace)".into(),
                    });
                }
                '{' => {
                    let mut body = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        body.push(c);
                    }
                    if !closed {
                        return Err(TemplateError {
                            at: i,
                            message: "`{` is never closed (write `{{` for a literal brace)".into(),
                        });
                    }
                    let (name, fallback) = match body.split_once('|') {
                        Some((n, f)) => (n.trim(), Some(f)),
                        None => (body.trim(), None),
                    };
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    {
                        return Err(TemplateError {
                            at: i,
                            message: format!("`{{{body}}}` is not a variable name ([a-z0-9_])"),
                        });
                    }
                    if buf.len() > text_start {
                        parts.push(Part::Text(span(text_start, buf.len())));
                    }
                    let n0 = buf.len();
                    buf.push_str(name);
                    let name = span(n0, buf.len());
                    let fallback = fallback.map(|f| {
                        let f0 = buf.len();
                        buf.push_str(f);
                        span(f0, buf.len())
                    });
                    parts.push(Part::Var { name, fallback });
                    text_start = buf.len();
                }
                c => buf.push(c),
            }
        }
        if buf.len() > text_start {
            parts.push(Part::Text(span(text_start, buf.len())));
        }
        Ok(Template {
            buf: buf.into_boxed_str(),
            parts: parts.into_boxed_slice(),
        })
    }

    fn at(&self, (a, b): Span) -> &str {
        self.buf.get(a as usize..b as usize).unwrap_or_default()
    }

    /// Names of the variables the template uses, in order, possibly repeated.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(self.at(*name)),
            Part::Text(_) => None,
        })
    }

    /// Variables without a fallback: the reply is incomplete without them.
    pub fn required(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var {
                name,
                fallback: None,
            } => Some(self.at(*name)),
            _ => None,
        })
    }

    /// The fixed text: literal parts and fallbacks, each variable as a space. This is what
    /// the owner wrote, and what compliance checks when a phrase is saved.
    pub fn literal(&self) -> String {
        let mut out = String::new();
        for part in self.parts.iter() {
            match *part {
                Part::Text(t) => out.push_str(self.at(t)),
                Part::Var {
                    fallback: Some(f), ..
                } => out.push_str(self.at(f)),
                Part::Var { fallback: None, .. } => out.push(' '),
            }
        }
        out
    }

    /// Renders with `lookup`; an empty value counts as no value.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> Rendered {
        let mut text = String::new();
        let mut missing: Vec<String> = Vec::new();
        for part in self.parts.iter() {
            match *part {
                Part::Text(t) => text.push_str(self.at(t)),
                Part::Var { name, fallback } => {
                    let name = self.at(name);
                    match lookup(name).filter(|v| !v.is_empty()) {
                        Some(v) => text.push_str(v),
                        None => match fallback {
                            Some(f) => text.push_str(self.at(f)),
                            None => {
                                text.push('{');
                                text.push_str(name);
                                text.push('}');
                                if !missing.iter().any(|m| m == name) {
                                    missing.push(name.to_string());
                                }
                            }
                        },
                    }
                }
            }
        }
        Rendered { text, missing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<&'static str> {
        match name {
            "buyer" => Some("小王"),
            "carrier" => Some("顺丰"),
            "empty" => Some(""),
            _ => None,
        }
    }

    #[test]
    fn render_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("您好", "您好", &[]),
            ("{buyer|亲}您好", "小王您好", &[]),
            ("{nick|亲}您好", "亲您好", &[]),
            ("{nick|}您好", "您好", &[]),
            (
                "{carrier}单号{tracking_no}",
                "顺丰单号{tracking_no}",
                &["tracking_no"],
            ),
            (
                "{tracking_no}/{tracking_no}",
                "{tracking_no}/{tracking_no}",
                &["tracking_no"],
            ),
            ("{empty}", "{empty}", &["empty"]),
            ("{empty|亲}", "亲", &[]),
            ("{{literal}}", "{literal}", &[]),
            ("{ buyer }", "小王", &[]),
        ];
        for (src, want, missing) in cases {
            let t = Template::parse(src).expect(src);
            let r = t.render(vars);
            assert_eq!(r.text, *want, "render({src:?})");
            assert_eq!(r.missing, *missing, "missing({src:?})");
        }
    }

    #[test]
    fn parse_errors_table() {
        let cases: &[(&str, usize)] = &[
            ("abc{buyer", 3),
            ("a}b", 1),
            ("{}", 0),
            ("x{买家}", 1),
            ("{a-b}", 0),
        ];
        for (src, at) in cases {
            let err = Template::parse(src).unwrap_err();
            assert_eq!(err.at, *at, "parse({src:?}) → {err}");
        }
    }

    #[test]
    fn literal_keeps_text_and_fallbacks() {
        let t = Template::parse("{buyer|亲}您好,单号{tracking_no}").unwrap();
        assert_eq!(t.literal(), "亲您好,单号 ");
    }

    #[test]
    fn required_skips_fallbacks() {
        let t = Template::parse("{buyer|亲}{tracking_no}{carrier}").unwrap();
        assert_eq!(t.required().collect::<Vec<_>>(), ["tracking_no", "carrier"]);
        assert_eq!(t.variables().count(), 3);
    }
}

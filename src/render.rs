//! Reply templates: `{name}` and `{name|fallback}` placeholders.
//!
//! Invariant: a variable without a value is never rendered blank. It falls back to its
//! fallback if it has one; otherwise the placeholder stays visible in the text and the
//! variable is listed in [`Rendered::missing`] for the agent to fill. Pure.

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var {
        name: String,
        fallback: Option<String>,
    },
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
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = src.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    text.push('}');
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
                        Some((n, f)) => (n.trim(), Some(f.to_string())),
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
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var {
                        name: name.to_string(),
                        fallback,
                    });
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Names of the variables the template uses, in order, possibly repeated.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Variables without a fallback: the reply is incomplete without them.
    pub fn required(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var {
                name,
                fallback: None,
            } => Some(name.as_str()),
            _ => None,
        })
    }

    /// The fixed text: literal parts and fallbacks, each variable as a space. This is what
    /// the owner wrote, and what compliance checks when a phrase is saved.
    pub fn literal(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var {
                    fallback: Some(f), ..
                } => out.push_str(f),
                Part::Var { fallback: None, .. } => out.push(' '),
            }
        }
        out
    }

    /// Renders with `lookup`; an empty value counts as no value.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> Rendered {
        let mut text = String::new();
        let mut missing: Vec<String> = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Var { name, fallback } => match lookup(name).filter(|v| !v.is_empty()) {
                    Some(v) => text.push_str(v),
                    None => match fallback {
                        Some(f) => text.push_str(f),
                        None => {
                            text.push('{');
                            text.push_str(name);
                            text.push('}');
                            if !missing.iter().any(|m| m == name) {
                                missing.push(name.clone());
                            }
                        }
                    },
                },
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

//! The browser front ends: the agent sidebar at `/`, the owner admin page at `/admin`, the
//! demo chat workbench at `/demo/chat` and their assets at `/web/...`, read from the web
//! directory on each request (no build step; an edit shows on reload).
//!
//! Invariant: only files under the web directory are ever read. A request path is accepted
//! only as plain components of `[A-Za-z0-9._-]` without a leading dot, so no `..`, no hidden
//! file and no absolute path can be named, whatever its encoding.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::http::error;

/// The pages: route → file in the web directory.
pub(super) const PAGES: [(&str, &str); 3] = [
    ("/", "sidebar.html"),
    ("/admin", "admin.html"),
    ("/demo/chat", "demo-chat.html"),
];

/// `GET /web/{*path}`.
pub(super) async fn asset(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let rel = uri.path().strip_prefix("/web/").unwrap_or_default();
    match safe_relative(rel) {
        Some(rel) => serve_file(&state.web, &rel).await,
        None => error(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

/// `GET` of one of [`PAGES`].
pub(super) async fn page(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    match PAGES.iter().find(|(route, _)| *route == uri.path()) {
        Some((_, file)) => serve_file(&state.web, Path::new(file)).await,
        None => error(StatusCode::NOT_FOUND, "not_found", "no such page"),
    }
}

/// The path as components under the web directory, or `None` if it names anything else.
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in rel.split('/') {
        let ok = !part.is_empty()
            && !part.starts_with('.')
            && part.len() <= 100
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return None;
        }
        out.push(part);
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn content_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "csv" => "text/csv; charset=utf-8",
        _ => return None,
    })
}

async fn serve_file(root: &Path, rel: &Path) -> Response {
    let Some(kind) = content_type(rel) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    match tokio::fs::read(root.join(rel)).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, kind),
                // Pages change with the phrasebook's features; never serve a stale one.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "{} is not in the web directory {} (set --web)",
                rel.display(),
                root.display()
            ),
        ),
        Err(e) => {
            tracing::warn!(file = %rel.display(), error = %e, "reading a web file failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "reading the file failed",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_components_name_a_file() {
        let cases = [
            ("huashu-client.js", Some("huashu-client.js")),
            ("img/sidebar.png", Some("img/sidebar.png")),
            ("../Cargo.toml", None),
            ("..", None),
            (".env", None),
            ("a/../../b.js", None),
            ("/etc/passwd", None),
            ("a//b.js", None),
            ("%2e%2e/x.js", None),
            ("a\\b.js", None),
            ("", None),
            ("a/", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                safe_relative(input),
                want.map(PathBuf::from),
                "path {input:?}"
            );
        }
    }

    #[test]
    fn unknown_kinds_are_not_served() {
        assert_eq!(
            content_type(Path::new("a.js")),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type(Path::new("a.toml")), None);
        assert_eq!(content_type(Path::new("a")), None);
    }
}
